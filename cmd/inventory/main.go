// Command inventory runs the inventory engine: the HTTP API, the persister,
// the reconciler and the reservation sweeper.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "inventory: not yet wired; see README")
	os.Exit(2)
}
