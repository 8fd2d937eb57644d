package jointoken

import "testing"

func TestMatchesCA(t *testing.T) {
	ca := []byte("cluster root ca")
	s, err := Generate(ca)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tok  Token
		der  []byte
		want bool
	}{
		{"same CA", tok, ca, true},
		{"other CA", tok, []byte("another root ca"), false},
		{"no CA", tok, nil, false},
		{"zero token", Token{}, ca, false},
	}
	for _, tt := range tests {
		if got := tt.tok.MatchesCA(tt.der); got != tt.want {
			t.Errorf("%s: MatchesCA = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSameSecret(t *testing.T) {
	worker, err := Generate([]byte("ca"))
	if err != nil {
		t.Fatal(err)
	}
	manager, err := Generate([]byte("ca"))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := Parse(worker)
	// Same secret, different CA digest: SameSecret looks at secrets only.
	otherCA := Token{Version: 1, Digest: Digest([]byte("other")), Secret: w.Secret}.String()

	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"identical", worker, worker, true},
		{"whitespace around one", worker, "  " + worker + "\n", true},
		{"same secret other digest", worker, otherCA, true},
		{"worker vs manager", worker, manager, false},
		{"first invalid", "nonsense", worker, false},
		{"second invalid", worker, "SWMTKN-1-short-short", false},
		{"both invalid and equal", "x", "x", false},
		{"both empty", "", "", false},
	}
	for _, tt := range tests {
		if got := SameSecret(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: SameSecret = %v, want %v", tt.name, got, tt.want)
		}
	}
}
