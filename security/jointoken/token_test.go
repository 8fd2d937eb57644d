package jointoken

import (
	"strings"
	"testing"
)

var (
	goodDigest = Digest([]byte("ca"))
	goodSecret = "0123456789abcdefghijklmno"
	goodToken  = "SWMTKN-1-" + goodDigest + "-" + goodSecret
)

func TestParseValid(t *testing.T) {
	want := Token{Version: 1, Digest: goodDigest, Secret: goodSecret}
	tests := []struct {
		name string
		in   string
	}{
		{"plain", goodToken},
		{"surrounding whitespace", " \t" + goodToken + "\r\n"},
		{"all zero secret", "SWMTKN-1-" + goodDigest + "-" + strings.Repeat("0", 25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Version != want.Version || got.Digest != want.Digest {
				t.Fatalf("Parse = %+v, want version and digest of %+v", got, want)
			}
			if got.String() != strings.TrimSpace(tt.in) {
				t.Fatalf("String() = %q, want %q", got.String(), strings.TrimSpace(tt.in))
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	// 36^25 - 1 is "zzz...z", which is above 2^128: the right length and
	// alphabet, but no 128-bit secret can produce it.
	tooBigSecret := strings.Repeat("z", 25)
	tooBigDigest := strings.Repeat("z", 50)

	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"empty", "", "must start with SWMTKN-1-"},
		{"wrong prefix", "DOCKER-1-" + goodDigest + "-" + goodSecret, "must start with SWMTKN-1-"},
		{"lowercase prefix", strings.ToLower(goodToken), "must start with SWMTKN-1-"},
		{"prefix only", "SWMTKN-", "parts"},
		{"missing secret", "SWMTKN-1-" + goodDigest, "has 3 dash-separated parts"},
		{"extra part", goodToken + "-x", "has 5 dash-separated parts"},
		{"inner whitespace", "SWMTKN-1-" + goodDigest + " -" + goodSecret, "CA digest has 51 characters"},
		{"version not a number", "SWMTKN-x-" + goodDigest + "-" + goodSecret, `version "x" is not a number`},
		{"version empty", "SWMTKN--" + goodDigest + "-" + goodSecret, `version "" is not a number`},
		{"version leading zero", "SWMTKN-01-" + goodDigest + "-" + goodSecret, `version "01" is not a number`},
		{"version plus sign", "SWMTKN-+1-" + goodDigest + "-" + goodSecret, `version "+1" is not a number`},
		{"unsupported version", "SWMTKN-2-" + goodDigest + "-" + goodSecret, "unsupported join token version 2"},
		{"digest short", "SWMTKN-1-" + goodDigest[1:] + "-" + goodSecret, "CA digest has 49 characters, want 50"},
		{"digest empty", "SWMTKN-1--" + goodSecret, "CA digest has 0 characters"},
		{"digest uppercase", "SWMTKN-1-" + strings.ToUpper(goodDigest) + "-" + goodSecret, "CA digest has"},
		{"digest bad char", "SWMTKN-1-" + goodDigest[:49] + "_-" + goodSecret, `CA digest has '_' at position 49`},
		{"digest too big", "SWMTKN-1-" + tooBigDigest + "-" + goodSecret, "CA digest is larger than 256 bits"},
		{"secret long", "SWMTKN-1-" + goodDigest + "-" + goodSecret + "0", "secret has 26 characters, want 25"},
		{"secret bad char", "SWMTKN-1-" + goodDigest + "-" + goodSecret[:24] + "!", `secret has '!' at position 24`},
		{"secret too big", "SWMTKN-1-" + goodDigest + "-" + tooBigSecret, "secret is larger than 128 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error containing %q", tt.in, got, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
			if got != (Token{}) {
				t.Fatalf("Parse returned %+v alongside an error, want zero Token", got)
			}
		})
	}
}
