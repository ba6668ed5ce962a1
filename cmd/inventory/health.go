package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func runHealth(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := newFlagSet("health", "Ask a running inventory process whether it is ready: GET --url (by default /readyz on\n"+
		"--admin-addr, 0.0.0.0 read as 127.0.0.1) and exit 0 on a 2xx answer, 1 otherwise, printing\n"+
		"the answer. For health checks in an image without a shell or curl (deploy/).", stderr, os.Getenv)
	adminAddr := registerAdmin(fs)
	target := fs.String("url", "INVENTORY_HEALTH_URL", "", "URL to ask (default http://<admin address>/readyz)")
	timeout := fs.Duration("timeout", "INVENTORY_HEALTH_TIMEOUT", 3*time.Second, "how long to wait for the answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	u := *target
	if u == "" {
		if adminOff(*adminAddr) {
			return fmt.Errorf("no --url and the admin address is off")
		}
		u = "http://" + localAddr(*adminAddr) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(rq)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s\n%s", u, res.Status, body)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", u, res.Status)
	}
	return nil
}

// localAddr returns a listen address as a local client dials it: an
// unspecified host (0.0.0.0, ::, empty) becomes the loopback.
func localAddr(addr string) string {
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
