package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/shelfline/inventory/engine"
)

// Roles of an API key (DESIGN §7).
const (
	RoleAdmin  = "admin"
	RoleStore  = "store"
	RoleReader = "reader"
)

// NoRateLimit, as a Key's Rate, exempts the key from every rate limit, the
// server's default included ("rate=off" in INVENTORY_API_KEYS).
const NoRateLimit = -1

// decimalRE is the form of a rate: digits, with a fraction or without.
var decimalRE = regexp.MustCompile(`^[0-9]{1,10}(\.[0-9]{1,6})?$`)

// maxKeyRate bounds a key's rate and burst: beyond it a limit means nothing.
const maxKeyRate = 1e9

// Key is one API key: a bearer token and what it may do.
type Key struct {
	Token string
	// Role is RoleAdmin, RoleStore or RoleReader.
	Role string
	// Store is the one store a RoleStore key may read and change.
	Store string
	// Rate is the key's own request rate limit, in requests per second (a
	// token bucket): beyond it the API answers 429 with Retry-After. Zero
	// takes the server's default (Config.RatePerSecond, by default no
	// limit); NoRateLimit exempts the key.
	Rate float64
	// Burst is the size of the key's bucket: how many requests may come at
	// once after a quiet spell. Zero: twice the rate, at least 1.
	Burst int
}

// Principal names the key in events, logs and idempotency scopes without
// revealing the token: role[:store]~<8 hex digits of the token's SHA-256>.
func (k Key) Principal() string {
	sum := sha256.Sum256([]byte(k.Token))
	name := k.Role
	if k.Role == RoleStore {
		name += ":" + k.Store
	}
	return name + "~" + hex.EncodeToString(sum[:4])
}

// ParseKeys parses INVENTORY_API_KEYS: comma-separated entries
//
//	token:role[:store][:name=value…]
//
// where role is admin, reader or store (store takes the store id), and the
// options are
//
//	rate=R   the key's own rate limit: R requests per second (a positive
//	         number, fractions allowed), or off for none, whatever the
//	         server's default
//	burst=B  the size of its bucket, an integer 1..1e9 (default twice the
//	         rate, at least 1); needs rate=R
//
// For example "t1:admin,t2:store:s1:rate=50:burst=100,t3:reader:rate=off".
// Whitespace around entries is ignored; an empty string gives no keys.
// Errors never show a token.
func ParseKeys(s string) ([]Key, error) {
	var out []Key
	seen := map[string]bool{}
	for _, ent := range strings.Split(s, ",") {
		ent = strings.TrimSpace(ent)
		if ent == "" {
			continue
		}
		k, err := parseKey(ent)
		if err != nil {
			return nil, err
		}
		if seen[k.Token] {
			return nil, fmt.Errorf("api key %s: token listed twice", redact(k.Token))
		}
		seen[k.Token] = true
		out = append(out, k)
	}
	return out, nil
}

// parseKey parses one entry of INVENTORY_API_KEYS.
func parseKey(ent string) (Key, error) {
	parts := strings.Split(ent, ":")
	if len(parts) < 2 || parts[0] == "" {
		return Key{}, fmt.Errorf("api key %q: want token:role[:store][:rate=R[:burst=B]]", redact(parts[0]))
	}
	k := Key{Token: parts[0], Role: parts[1]}
	opts := parts[2:]
	badRole := func() error {
		return fmt.Errorf("api key %s: role must be admin, reader or store:<store id>, got %q", redact(k.Token), strings.Join(parts[1:], ":"))
	}
	switch k.Role {
	case RoleAdmin, RoleReader:
	case RoleStore:
		if len(opts) == 0 || !engine.ValidID(opts[0]) {
			return Key{}, badRole()
		}
		k.Store, opts = opts[0], opts[1:]
	default:
		return Key{}, badRole()
	}
	rateSet, burstSet := false, false
	for i, opt := range opts {
		name, val, ok := strings.Cut(opt, "=")
		if !ok {
			if i == 0 && name != "rate" && name != "burst" {
				return Key{}, badRole()
			}
			return Key{}, fmt.Errorf("api key %s: option %q: want name=value (rate=R or burst=B)", redact(k.Token), opt)
		}
		switch name {
		case "rate":
			if rateSet {
				return Key{}, fmt.Errorf("api key %s: rate given twice", redact(k.Token))
			}
			rateSet = true
			if val == "off" {
				k.Rate = NoRateLimit
				continue
			}
			r, err := strconv.ParseFloat(val, 64)
			if !decimalRE.MatchString(val) || err != nil || r <= 0 || r > maxKeyRate {
				return Key{}, fmt.Errorf("api key %s: rate must be a decimal number of requests per second above 0 and up to 1000000000, or off; got %q", redact(k.Token), val)
			}
			k.Rate = r
		case "burst":
			if burstSet {
				return Key{}, fmt.Errorf("api key %s: burst given twice", redact(k.Token))
			}
			burstSet = true
			b, err := strconv.Atoi(val)
			if err != nil || b < 1 || b > maxKeyRate {
				return Key{}, fmt.Errorf("api key %s: burst must be an integer 1..1000000000; got %q", redact(k.Token), val)
			}
			k.Burst = b
		default:
			return Key{}, fmt.Errorf("api key %s: unknown option %q (want rate= or burst=)", redact(k.Token), name)
		}
	}
	if burstSet && k.Rate <= 0 {
		return Key{}, fmt.Errorf("api key %s: burst needs a rate (rate=R:burst=B)", redact(k.Token))
	}
	return k, nil
}

func redact(tok string) string {
	if len(tok) <= 4 {
		return "****"
	}
	return tok[:2] + "…"
}

// keyring finds the key of a bearer token in constant time with respect to
// the tokens' contents: every configured key is compared, by SHA-256.
type keyring struct {
	keys   []Key
	hashes [][32]byte
}

func newKeyring(keys []Key) *keyring {
	kr := &keyring{keys: append([]Key(nil), keys...)}
	for _, k := range kr.keys {
		kr.hashes = append(kr.hashes, sha256.Sum256([]byte(k.Token)))
	}
	return kr
}

func (kr *keyring) lookup(token string) (Key, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range kr.hashes {
		if subtle.ConstantTimeCompare(h[:], kr.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return kr.keys[found], true
}

// caller is the authenticated key of a request.
type caller struct {
	Key
	principal string
}

const localsCaller = "caller"

func callerOf(c *fiber.Ctx) *caller {
	v, _ := c.Locals(localsCaller).(*caller)
	return v
}

// authenticate resolves the bearer token. The WebSocket and SSE routes also
// accept ?access_token=, because browsers cannot set headers on them.
// A request with two Authorization fields is refused (400): which one was
// meant is not for the server to guess.
func (s *Server) authenticate(c *fiber.Ctx) error {
	h, err := singleHeader(c, fiber.HeaderAuthorization)
	if err != nil {
		return err
	}
	tok, ok := "", false
	if scheme, rest, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
		tok, ok = strings.TrimSpace(rest), true
	}
	if !ok && h == "" && c.Method() == fiber.MethodGet {
		if q := c.Query("access_token"); q != "" && (c.Path() == "/v1/events" || c.Path() == "/v1/ws") {
			tok, ok = q, true
		}
	}
	if !ok || tok == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="inventory"`)
		return problem(http.StatusUnauthorized, "unauthorized", "an Authorization: Bearer <token> header is required")
	}
	k, found := s.keys.lookup(tok)
	if !found {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="inventory", error="invalid_token"`)
		return problem(http.StatusUnauthorized, "unauthorized", "unknown token")
	}
	c.Locals(localsCaller, &caller{Key: k, principal: k.Principal()})
	return c.Next()
}

// canRead reports whether the caller may read store ("" = every store).
func (cl *caller) canRead(store string) bool {
	return cl.Role != RoleStore || cl.Store == store
}

// canWrite reports whether the caller may change store.
func (cl *caller) canWrite(store string) bool {
	switch cl.Role {
	case RoleAdmin:
		return true
	case RoleStore:
		return cl.Store == store
	}
	return false
}

func forbidden(detail string) *Problem { return problem(http.StatusForbidden, "forbidden", detail) }

func (cl *caller) mustRead(store string) error {
	if !cl.canRead(store) {
		return forbidden(fmt.Sprintf("this token may only use store %s", cl.Store))
	}
	return nil
}

func (cl *caller) mustWrite(store string) error {
	if cl.Role == RoleReader {
		return forbidden("a reader token may not change stock")
	}
	if !cl.canWrite(store) {
		return forbidden(fmt.Sprintf("this token may only use store %s", cl.Store))
	}
	return nil
}

func (cl *caller) mustAdmin() error {
	if cl.Role != RoleAdmin {
		return forbidden("only an admin token may do this")
	}
	return nil
}
