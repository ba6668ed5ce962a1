// Package deploy holds the files that run inventory in production
// (README, "Deploying it"): a Dockerfile, a compose file, Kubernetes
// manifests and systemd units. It has no code; its test parses each file and
// checks that every command, flag, environment variable and HTTP route it
// names exists in the binary.
package deploy
