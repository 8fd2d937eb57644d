package jointoken

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts is
// canonical: formatting it gives back the trimmed input, and parsing that
// again gives an equal Token.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"SWMTKN-1-",
		"SWMTKN-1---",
		goodToken,
		" " + goodToken + "\n",
		"SWMTKN-2-" + goodDigest + "-" + goodSecret,
		"SWMTKN-01-" + goodDigest + "-" + goodSecret,
		"SWMTKN-1-" + strings.Repeat("z", 50) + "-" + goodSecret,
		"SWMTKN-1-" + goodDigest + "-" + strings.Repeat("z", 25),
		"SWMTKN-1-" + strings.ToUpper(goodDigest) + "-" + goodSecret,
		goodToken + "-extra",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		out := tok.String()
		if out != strings.TrimSpace(s) {
			t.Fatalf("Parse(%q) accepted a non-canonical spelling; String() = %q", s, out)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %v after accepting %q", out, err, s)
		}
		if again != tok {
			t.Fatalf("round trip changed token: %+v became %+v", tok, again)
		}
	})
}
