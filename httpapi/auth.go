package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
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

// Key is one API key: a bearer token and what it may do.
type Key struct {
	Token string
	// Role is RoleAdmin, RoleStore or RoleReader.
	Role string
	// Store is the one store a RoleStore key may read and change.
	Store string
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

// ParseKeys parses INVENTORY_API_KEYS: "token:role[:store],…" where role is
// admin, reader or store (store takes the store id). Whitespace around
// entries is ignored; an empty string gives no keys.
func ParseKeys(s string) ([]Key, error) {
	var out []Key
	seen := map[string]bool{}
	for _, ent := range strings.Split(s, ",") {
		ent = strings.TrimSpace(ent)
		if ent == "" {
			continue
		}
		parts := strings.Split(ent, ":")
		if len(parts) < 2 || parts[0] == "" {
			return nil, fmt.Errorf("api key %q: want token:role[:store]", redact(parts[0]))
		}
		k := Key{Token: parts[0], Role: parts[1]}
		switch {
		case k.Role == RoleAdmin && len(parts) == 2, k.Role == RoleReader && len(parts) == 2:
		case k.Role == RoleStore && len(parts) == 3 && engine.ValidID(parts[2]):
			k.Store = parts[2]
		default:
			return nil, fmt.Errorf("api key %s: role must be admin, reader or store:<store id>, got %q", redact(k.Token), strings.Join(parts[1:], ":"))
		}
		if seen[k.Token] {
			return nil, fmt.Errorf("api key %s: token listed twice", redact(k.Token))
		}
		seen[k.Token] = true
		out = append(out, k)
	}
	return out, nil
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
func (s *Server) authenticate(c *fiber.Ctx) error {
	h := c.Get(fiber.HeaderAuthorization)
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
