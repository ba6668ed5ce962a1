package engine

import (
	"fmt"
	"unicode/utf8"
)

// Free text (a reason) goes into the ledger and onto every screen that shows
// an event, so the engine refuses what PostgreSQL cannot store or what would
// mislead a reader:
//   - bytes that are not UTF-8;
//   - control characters (Unicode Cc: U+0000..U+001F, U+007F..U+009F),
//     tabs and line breaks included: NUL cannot be stored in PostgreSQL
//     text, and the others forge lines in logs and exports;
//   - line and paragraph separators (U+2028, U+2029);
//   - bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
//     U+2066..U+2069), which make text read other than it is stored;
//   - noncharacters (U+FDD0..U+FDEF and U+xFFFE, U+xFFFF).
//
// Everything else, emoji and joiners included, is allowed. Lengths count
// characters (code points), not bytes.

// textProblem returns what is wrong with s as free text of at most max
// characters, or "" when it is acceptable.
func textProblem(s string, max int) string {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return "must be valid UTF-8"
		}
		if forbiddenRune(r) {
			return fmt.Sprintf("must not contain control, bidirectional-control, line-separator or noncharacter code points (found U+%04X)", r)
		}
		n++
		i += size
	}
	if n > max {
		return fmt.Sprintf("must be at most %d characters", max)
	}
	return ""
}

func forbiddenRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return true
	}
	return false
}

// validText checks a free-text field (see the rules above).
func validText(field, s string, max int) error {
	if p := textProblem(s, max); p != "" {
		return invalid(field, "%s", p)
	}
	return nil
}

// ValidText reports whether s is acceptable free text of at most max
// characters: valid UTF-8 with no control, bidirectional-control,
// line-separator or noncharacter code points.
func ValidText(s string, max int) bool { return textProblem(s, max) == "" }
