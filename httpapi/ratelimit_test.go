package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDefaultsNeverRateLimit: under the default configuration one token
// sending as fast as it can is never answered 429 (a flash sale through one
// service token); only the in-flight limit sheds load.
func TestDefaultsNeverRateLimit(t *testing.T) {
	t.Parallel()
	// A frozen clock gives no refill: the count alone decides, whatever
	// speed this machine serves at.
	frozen := time.Unix(1_700_000_000, 0)
	ts := newTestServer(t, func(c *Config) { c.Now = func() time.Time { return frozen } })
	ts.put("s1", "x", 1)
	const total, workers = 5000, 16
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	cl := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	var next, limited, other atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				rq, _ := http.NewRequest("GET", ts.url+"/v1/stores/s1/items/x", nil)
				rq.Header.Set("Authorization", "Bearer "+tokAdmin)
				res, err := cl.Do(rq)
				if err != nil {
					other.Add(1)
					continue
				}
				res.Body.Close()
				switch res.StatusCode {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, limited.Load(), "no 429 under the default configuration")
	require.Zero(t, other.Load(), "every request answered 200")
}

// TestKeyRate: a key's own rate= limits that key alone, with 429 and
// Retry-After, and a server-wide default applies to keys without their own.
func TestKeyRate(t *testing.T) {
	t.Parallel()
	keys, err := ParseKeys("slow:admin:rate=0.5:burst=2,fast:admin,free:reader:rate=off")
	require.NoError(t, err)
	ts := newTestServer(t, func(c *Config) { c.Keys = keys; c.RatePerSecond = 0.5; c.RateBurst = 3 })
	ts.put("s1", "x", 1)
	for i := 0; i < 2; i++ {
		require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", "slow", "").Status, "the key's burst")
	}
	r := ts.req("GET", "/v1/stores/s1/items/x", "slow", "")
	p := requireProblem(t, r, http.StatusTooManyRequests)
	require.Equal(t, ProblemTypeBase+"rate-limited", p["type"])
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, ra, 1)

	// The server-wide default (burst 3) for a key without its own rate.
	for i := 0; i < 3; i++ {
		require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", "fast", "").Status)
	}
	requireProblem(t, ts.req("GET", "/v1/stores/s1/items/x", "fast", ""), http.StatusTooManyRequests)

	// rate=off exempts a key from the default.
	for i := 0; i < 10; i++ {
		require.Equal(t, 200, ts.req("GET", "/v1/stores/s1/items/x", "free", "").Status)
	}
}

func TestParseKeyOptions(t *testing.T) {
	t.Parallel()
	keys, err := ParseKeys("a:admin:rate=200, b:store:s1:rate=50:burst=100 ,c:reader:rate=off,d:reader:rate=2.5,e:store:s2")
	require.NoError(t, err)
	require.Equal(t, []Key{
		{Token: "a", Role: RoleAdmin, Rate: 200},
		{Token: "b", Role: RoleStore, Store: "s1", Rate: 50, Burst: 100},
		{Token: "c", Role: RoleReader, Rate: NoRateLimit},
		{Token: "d", Role: RoleReader, Rate: 2.5},
		{Token: "e", Role: RoleStore, Store: "s2"},
	}, keys)

	for _, tc := range []struct{ in, want string }{
		{"a:admin:rate=", "rate must be"},
		{"a:admin:rate=0", "rate must be"},
		{"a:admin:rate=-1", "rate must be"},
		{"a:admin:rate=fast", "rate must be"},
		{"a:admin:rate=NaN", "rate must be"},
		{"a:admin:rate=Inf", "rate must be"},
		{"a:admin:rate=1e300", "rate must be"},
		{"a:admin:burst=5", "burst needs a rate"},
		{"a:admin:rate=off:burst=5", "burst needs a rate"},
		{"a:admin:rate=5:burst=0", "burst must be"},
		{"a:admin:rate=5:burst=1.5", "burst must be"},
		{"a:admin:rate=5:burst=x", "burst must be"},
		{"a:admin:rate=1:rate=2", "rate given twice"},
		{"a:admin:speed=1", `unknown option "speed"`},
		{"a:admin:rate", "want name=value"},
		{"a:admin:s1", "role must be"},
		{"a:store:rate=5", "role must be"},
		{"a:reader:rate=5:s1", "want name=value"},
	} {
		_, err := ParseKeys(tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
		require.NotContains(t, err.Error(), "a:", "the token is not echoed")
	}
}
