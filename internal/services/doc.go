// Package services holds the scripts that make sure Redis and PostgreSQL
// run on this machine for `make run` and `make test` (ensure.sh, run.sh).
// Its test runs ensure.sh against the machine's services.
package services
