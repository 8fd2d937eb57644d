package jointoken

import "testing"

func TestDerive(t *testing.T) {
	ca, other := []byte("root ca"), []byte("other ca")
	m := Derive(ca, []byte("s3cret-shared-by-all"), "manager")
	tok, err := Parse(m)
	if err != nil {
		t.Fatalf("derived token does not parse: %v", err)
	}
	if !tok.MatchesCA(ca) {
		t.Error("derived token does not match its CA")
	}
	if m != Derive(ca, []byte("s3cret-shared-by-all"), "manager") {
		t.Error("two nodes with the same secret and CA derived different tokens")
	}
	for name, o := range map[string]string{
		"worker role":  Derive(ca, []byte("s3cret-shared-by-all"), "worker"),
		"other secret": Derive(ca, []byte("another-secret-xyz"), "manager"),
		"other CA":     Derive(other, []byte("s3cret-shared-by-all"), "manager"),
	} {
		if SameSecret(m, o) {
			t.Errorf("%s gives the same token secret", name)
		}
	}
}
