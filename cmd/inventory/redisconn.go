package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shelfline/inventory/engine"
)

// Settings that name a Redis, for error messages.
const (
	envRedisURL          = "INVENTORY_REDIS_URL"
	envRedisClusterAddrs = "INVENTORY_REDIS_CLUSTER_ADDRS"
)

// paramCAFile is the query parameter of a Redis URL that names a PEM file of
// the CAs to trust for rediss:// instead of the system's. It is ours, not
// go-redis': it is taken out of the URL before go-redis parses it.
const paramCAFile = "ca_file"

// clusterReload is how often a cluster client reloads its slot map: go-redis
// reloads it on MOVED/ASK only, and a dead master sends neither.
const clusterReload = 5 * time.Second

// redisTarget is a Redis client and what it was made from, for errors.
type redisTarget struct {
	client redis.UniversalClient
	// setting names the variable the client comes from.
	setting string
	// user is the ACL user the client logs in as ("default" when none is
	// named); tls tells whether it speaks TLS.
	user string
	tls  bool
}

// newRedisClient returns the client of the real Redis that cfg names (not
// the embedded one), not yet connected:
//
//   - INVENTORY_REDIS_CLUSTER_ADDRS set: a Redis Cluster, either from
//     "host:port,…" (no password, no TLS) or from a URL
//     redis[s]://[user:password@]host:port?addr=host:port&addr=…
//     (go-redis ParseClusterURL: user, password and TLS for every node);
//   - else INVENTORY_REDIS_URL: redis[s]://[user:password@]host:port/db
//     (go-redis ParseURL).
//
// Either URL may carry ca_file=/path/ca.pem: the PEM file of the CAs that
// sign the servers' certificates, trusted instead of the system's (rediss://
// only). poolSize is the least pool size (a URL's pool_size may raise it);
// retries are left to the engine (engine.FailFast). Errors name the setting
// and never show a password.
func newRedisClient(cfg *config, poolSize int) (*redisTarget, error) {
	if v := strings.TrimSpace(cfg.RedisClusterAddrs); v != "" {
		if !strings.Contains(v, "://") {
			var addrs []string
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					addrs = append(addrs, a)
				}
			}
			copt := &redis.ClusterOptions{Addrs: addrs, PoolSize: poolSize, ClusterStateReloadInterval: clusterReload}
			engine.FailFastCluster(copt)
			return &redisTarget{client: redis.NewClusterClient(copt), setting: envRedisClusterAddrs, user: "default"}, nil
		}
		raw, caFile, err := takeCAFile(envRedisClusterAddrs, v)
		if err != nil {
			return nil, err
		}
		copt, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envRedisClusterAddrs, err)
		}
		if copt.TLSConfig, err = withCAFile(envRedisClusterAddrs, copt.TLSConfig, caFile); err != nil {
			return nil, err
		}
		copt.PoolSize = max(copt.PoolSize, poolSize)
		copt.ClusterStateReloadInterval = clusterReload
		engine.FailFastCluster(copt)
		return &redisTarget{client: redis.NewClusterClient(copt), setting: envRedisClusterAddrs,
			user: userName(copt.Username), tls: copt.TLSConfig != nil}, nil
	}
	raw, caFile, err := takeCAFile(envRedisURL, strings.TrimSpace(cfg.RedisURL))
	if err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envRedisURL, err)
	}
	if opt.TLSConfig, err = withCAFile(envRedisURL, opt.TLSConfig, caFile); err != nil {
		return nil, err
	}
	opt.PoolSize = max(opt.PoolSize, poolSize)
	engine.FailFast(opt)
	return &redisTarget{client: redis.NewClient(opt), setting: envRedisURL, user: userName(opt.Username), tls: opt.TLSConfig != nil}, nil
}

func userName(u string) string {
	if u == "" {
		return "default"
	}
	return u
}

// takeCAFile parses raw as a URL and takes its ca_file parameter out. A URL
// that does not parse is reported without its text, which may hold a
// password.
func takeCAFile(setting, raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", "", fmt.Errorf("%s is not a valid URL: %v", setting, err)
	}
	q := u.Query()
	if !q.Has(paramCAFile) {
		return raw, "", nil
	}
	ca := q.Get(paramCAFile)
	if len(q[paramCAFile]) > 1 || ca == "" {
		return "", "", fmt.Errorf("%s: %s must name one file", setting, paramCAFile)
	}
	q.Del(paramCAFile)
	u.RawQuery = q.Encode()
	return u.String(), ca, nil
}

// withCAFile returns cfg trusting only the CAs of the PEM file caFile (when
// one is named). A CA file needs TLS: a redis:// URL with one is an error.
func withCAFile(setting string, cfg *tls.Config, caFile string) (*tls.Config, error) {
	if caFile == "" {
		return cfg, nil
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s: %s is for TLS: use rediss://", setting, paramCAFile)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", setting, paramCAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: %s: no PEM certificate in %s", setting, paramCAFile, caFile)
	}
	cfg = cfg.Clone()
	cfg.RootCAs = pool
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg, nil
}

// ping checks that the Redis answers, and says in terms of the settings
// why it does not: a wrong password, a password missing, a certificate not
// trusted, TLS on one side only.
func (t *redisTarget) ping(ctx context.Context) error {
	var err error
	if cc, ok := t.client.(*redis.ClusterClient); ok {
		// A cluster client's PING goes to one node; every master must let
		// us in.
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	} else {
		err = t.client.Ping(ctx).Err()
	}
	if err == nil {
		return nil
	}
	if h := t.hint(err); h != nil {
		return h
	}
	return fmt.Errorf("redis unreachable (%s): %w", t.setting, err)
}

// hint returns err, an error of Redis or of the connection to it, wrapped
// in what to change when that is known; else nil.
func (t *redisTarget) hint(err error) error {
	msg := err.Error()
	var (
		unknownCA x509.UnknownAuthorityError
		badHost   x509.HostnameError
		badCert   x509.CertificateInvalidError
		notTLS    tls.RecordHeaderError
	)
	switch {
	case strings.Contains(msg, "WRONGPASS"):
		return fmt.Errorf("redis refused the user %q and password of %s: %w", t.user, t.setting, err)
	case strings.Contains(msg, "NOAUTH"):
		return fmt.Errorf("redis requires a password: give it in %s as redis[s]://user:password@host:port: %w", t.setting, err)
	case strings.Contains(msg, "NOPERM"):
		return fmt.Errorf("redis user %q (%s) lacks a permission the inventory needs (it runs scripts and reads streams on its keys): %w", t.user, t.setting, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("redis TLS: the server's certificate is signed by an authority the system does not trust; "+
			"name its CA with ?%s=/path/ca.pem in %s: %w", paramCAFile, t.setting, err)
	case errors.As(err, &badHost):
		return fmt.Errorf("redis TLS: the server's certificate is not for the host named in %s: %w", t.setting, err)
	case errors.As(err, &badCert):
		return fmt.Errorf("redis TLS: the server's certificate is not valid: %w", err)
	case errors.As(err, &notTLS):
		return fmt.Errorf("the Redis of %s does not speak TLS: use redis:// instead of rediss://: %w", t.setting, err)
	case t.tls && isTimeout(err):
		// A server without TLS reads the handshake as the start of a
		// command and waits for the rest.
		return fmt.Errorf("the Redis of %s did not answer in time: is it reachable, and does it serve TLS "+
			"(if not, use redis:// instead of rediss://)? %w", t.setting, err)
	case !t.tls && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("the Redis of %s closed the connection (if it serves TLS only, use rediss://): %w", t.setting, err)
	}
	return nil
}

// isTimeout reports whether err is a timeout of a dial or a read.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
