package jsonenc

import (
	"encoding/json"
	"testing"
)

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "sofa", "·g0a", `q"b\c`, "<&>", "\x00\x1f\t\n\r\b\f", "\u2028\u2029", "\xff\xfe", "é日本", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := String(nil, s); string(got) != string(want) {
			t.Fatalf("String(%q) = %s, encoding/json: %s", s, got, want)
		}
	})
}
