package httpapi

import (
	"reflect"
	"strings"
	"sync"
)

// membersOK reports whether body is one JSON object, with nothing but
// white space after it, whose objects' member names are, at every level
// that decodes into a struct, exactly one of that struct's JSON names and
// each at most once (the rules checkMembers enforces). It does not check
// the values: json.Unmarshal does. False means "not shown to be fine":
// the caller takes the path that finds and words the error. It allocates
// nothing once a type's names are cached.
func membersOK(body []byte, t reflect.Type) bool {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	end, ok := scanValue(body, i, t)
	if !ok {
		return false
	}
	return skipSpace(body, end) == len(body)
}

// structNames is a struct type's JSON names, each with its field's index.
type structNames struct {
	index map[string]int
	types []reflect.Type
}

var namesCache sync.Map // reflect.Type → *structNames

func namesOf(t reflect.Type) *structNames {
	if v, ok := namesCache.Load(t); ok {
		return v.(*structNames)
	}
	n := &structNames{index: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		n.index[name] = len(n.types)
		n.types = append(n.types, t.Field(i).Type)
	}
	v, _ := namesCache.LoadOrStore(t, n)
	return v.(*structNames)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanValue scans the value starting at b[i] (not white space), checking
// the member names of objects that decode into a struct type t, and returns
// the index just after it.
func scanValue(b []byte, i int, t reflect.Type) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '{':
		if t != nil && t.Kind() == reflect.Struct && t != intType {
			return scanObject(b, i, namesOf(t))
		}
		return scanObject(b, i, nil)
	case '[':
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			end, ok := scanValue(b, i, elem)
			if !ok {
				return 0, false
			}
			i = skipSpace(b, end)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == ']' {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipSpace(b, i+1)
		}
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	default:
		// a number or a literal: its own syntax is Unmarshal's to check
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || (b[j] >= '0' && b[j] <= '9') || (b[j] >= 'a' && b[j] <= 'z') || (b[j] >= 'A' && b[j] <= 'Z')) {
			j++
		}
		return j, j > i
	}
}

// scanObject scans an object; names, when not nil, are the only member
// names allowed, each once.
func scanObject(b []byte, i int, names *structNames) (int, bool) {
	var seen uint64
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, escaped, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		var ft reflect.Type
		if names != nil {
			if escaped {
				return 0, false // an escaped name: let the slow path judge it
			}
			k, known := names.index[string(b[i+1:end-1])]
			if !known || k >= 64 || seen&(1<<k) != 0 {
				return 0, false
			}
			seen |= 1 << k
			ft = names.types[k]
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		end, ok = scanValue(b, i, ft)
		if !ok {
			return 0, false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipSpace(b, i+1)
	}
}

// scanString scans a string starting at b[i] == '"' and returns the index
// after its closing quote and whether it holds an escape.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, escaped, true
		case '\\':
			escaped = true
			j++
		}
	}
	return 0, false, false
}
