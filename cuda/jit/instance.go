package jit

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInstance reports a malformed kernel instance expression.
var ErrInstance = errors.New("jit: bad kernel instance")

// Instance names one kernel instantiation: the __global__ function template
// and its template arguments, as C++ source text. Its String form is the
// NVRTC name expression ("fp8_gemm_nt<64, 64, 1>"), which NVRTC
// instantiates and whose mangled name it reports.
type Instance struct {
	Name string   // qualified function name, e.g. "fp8_gemm_nt"
	Args []string // template arguments, e.g. {"64", "64", "1"}; none for a plain kernel
}

// String formats the name expression: Name, then "<a, b, ...>" when there
// are arguments.
func (i Instance) String() string {
	if len(i.Args) == 0 {
		return i.Name
	}
	return i.Name + "<" + strings.Join(i.Args, ", ") + ">"
}

// ParseInstance parses a name expression such as "fp8_gemm_nt<64, 64, 1>"
// or "ns::k<Foo<1, 2>, (3 > 2)>": a C++ qualified identifier, optionally
// followed by a template argument list whose arguments may nest <...>,
// (...) and [...]. Arguments are trimmed and must not be empty. Errors wrap
// ErrInstance and say where the text went wrong.
func ParseInstance(s string) (Instance, error) {
	s = strings.TrimSpace(s)
	n := 0
	for n < len(s) && (isIdent(s[n]) || s[n] == ':') {
		n++
	}
	name := s[:n]
	if !validName(name) {
		return Instance{}, fmt.Errorf("%w: %q does not start with a C++ name", ErrInstance, s)
	}
	rest := strings.TrimSpace(s[n:])
	if rest == "" {
		return Instance{Name: name}, nil
	}
	if rest[0] != '<' || rest[len(rest)-1] != '>' {
		return Instance{}, fmt.Errorf("%w: %q: after %q expected <template arguments>", ErrInstance, s, name)
	}
	body := rest[1 : len(rest)-1]
	var args []string
	start := 0
	var stack []byte // open brackets; '<' and '>' inside (...) are comparisons
	top := func() byte {
		if len(stack) == 0 {
			return 0
		}
		return stack[len(stack)-1]
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case '<':
			if top() != '(' {
				stack = append(stack, c)
			}
		case '(', '[':
			stack = append(stack, c)
		case '>', ')', ']':
			if c == '>' && top() == '(' {
				continue
			}
			want := map[byte]byte{'>': '<', ')': '(', ']': '['}[c]
			if top() != want {
				return Instance{}, fmt.Errorf("%w: %q: unbalanced %q at offset %d of the arguments", ErrInstance, s, c, i)
			}
			stack = stack[:len(stack)-1]
		case ',':
			if len(stack) == 0 {
				args = append(args, strings.TrimSpace(body[start:i]))
				start = i + 1
			}
		}
	}
	if len(stack) != 0 {
		return Instance{}, fmt.Errorf("%w: %q: unclosed %q", ErrInstance, s, stack[len(stack)-1])
	}
	args = append(args, strings.TrimSpace(body[start:]))
	for i, a := range args {
		if a == "" {
			return Instance{}, fmt.Errorf("%w: %q: template argument %d is empty", ErrInstance, s, i)
		}
	}
	return Instance{Name: name, Args: args}, nil
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// validName accepts identifiers joined by "::", optionally with a leading
// "::".
func validName(s string) bool {
	s = strings.TrimPrefix(s, "::")
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, "::") {
		if part == "" || part[0] >= '0' && part[0] <= '9' {
			return false
		}
		for i := 0; i < len(part); i++ {
			if !isIdent(part[i]) {
				return false
			}
		}
	}
	return true
}
