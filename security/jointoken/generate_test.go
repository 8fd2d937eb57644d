package jointoken

import (
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
)

func TestDigest(t *testing.T) {
	tests := []struct {
		name string
		der  []byte
	}{
		{"empty input", nil},
		{"short input", []byte("ca")},
		{"longer input", []byte(strings.Repeat("x", 1000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Digest(tt.der)
			if len(got) != digestLen {
				t.Fatalf("len(Digest) = %d, want %d", len(got), digestLen)
			}
			// Decoding the base-36 text must give back the SHA-256.
			n, ok := new(big.Int).SetString(got, 36)
			if !ok {
				t.Fatalf("Digest %q is not base 36", got)
			}
			sum := sha256.Sum256(tt.der)
			if want := new(big.Int).SetBytes(sum[:]); n.Cmp(want) != 0 {
				t.Fatalf("Digest decodes to %x, want %x", n, want)
			}
			if got != strings.ToLower(got) {
				t.Fatalf("Digest %q is not lowercase", got)
			}
		})
	}
}

func TestEncodeBase36Pads(t *testing.T) {
	tests := []struct {
		in    []byte
		width int
		want  string
	}{
		{nil, 5, "00000"},
		{[]byte{35}, 3, "00z"},
		{[]byte{36}, 3, "010"},
		{[]byte{1, 0}, 1, "74"}, // 256 = 7*36 + 4; wider than width is left alone
	}
	for _, tt := range tests {
		if got := encodeBase36(tt.in, tt.width); got != tt.want {
			t.Errorf("encodeBase36(%v, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestGenerate(t *testing.T) {
	der := []byte("root ca certificate")
	a, err := Generate(der)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{a, b} {
		tok, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(Generate()) = %v", err)
		}
		if tok.String() != s {
			t.Errorf("round trip: %q became %q", s, tok.String())
		}
		if tok.Version != 1 {
			t.Errorf("Version = %d, want 1", tok.Version)
		}
		if !tok.MatchesCA(der) {
			t.Errorf("token %q does not match its own CA", s)
		}
		if len(s) != len("SWMTKN-1--")+digestLen+secretLen {
			t.Errorf("token %q has length %d", s, len(s))
		}
	}
	// Two tokens for the same CA (e.g. worker and manager) share the digest
	// but must not share the secret.
	if a == b || SameSecret(a, b) {
		t.Fatalf("two generated tokens share a secret: %q, %q", a, b)
	}
}

func TestGenerateRejectsEmptyCA(t *testing.T) {
	if _, err := Generate(nil); err == nil {
		t.Fatal("Generate(nil) succeeded, want error")
	}
}
