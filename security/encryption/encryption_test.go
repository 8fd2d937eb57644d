package encryption

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func mustKey(t *testing.T) Key {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealRoundTrip(t *testing.T) {
	k := mustKey(t)
	for _, plain := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("secret-service "), 1000)} {
		s, err := Seal(k, plain, []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if !IsSealed(s) || len(s) != len(plain)+Overhead {
			t.Fatalf("sealed %d bytes into %d", len(plain), len(s))
		}
		// (Short plaintexts may turn up in random bytes by chance.)
		if len(plain) > 16 && bytes.Contains(s, plain[:16]) {
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := Open(k, s, []byte("ad"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open = %q, %v", got, err)
		}
	}
}

func TestOpenRefusesWrongKeyAdAndTampering(t *testing.T) {
	k := mustKey(t)
	s, err := Seal(k, []byte("payload"), []byte("index 7"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(mustKey(t), s, []byte("index 7")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := Open(k, s, []byte("index 8")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("moved to another index: %v", err)
	}
	for i := len(magic); i < len(s); i++ {
		bad := bytes.Clone(s)
		bad[i] ^= 0x40
		if _, err := Open(k, bad, []byte("index 7")); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	if _, err := Open(k, s[:len(s)-1], []byte("index 7")); err == nil {
		t.Fatal("truncated data opened")
	}
	if _, err := Open(k, []byte{0xfe, 'F', 'E', 1, 0}, nil); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("short data: %v", err)
	}
	if _, err := Open(k, []byte("plain"), nil); err == nil {
		t.Fatal("plain data opened as sealed")
	}
}

func TestUnlockKeyString(t *testing.T) {
	k := mustKey(t)
	s := k.UnlockKeyString()
	if !strings.HasPrefix(s, "SWMKEY-1-") {
		t.Fatalf("key %q lacks docker's prefix", s)
	}
	got, err := ParseUnlockKey("  " + s + "\n")
	if err != nil || !got.Equal(k) {
		t.Fatalf("parse = %v, %v", got, err)
	}
	for _, bad := range []string{"", "SWMKEY-1-", "SWMKEY-1-abc", "SWMKEY-2-" + s[9:], s[9:], "SWMTKN-1-abc-def", s + "AA"} {
		if _, err := ParseUnlockKey(bad); !errors.Is(err, ErrBadUnlockKey) {
			t.Errorf("ParseUnlockKey(%q) = %v, want ErrBadUnlockKey", bad, err)
		}
	}
}

func testKeyPEM(t *testing.T) []byte {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestKeyFilePlainAndLegacy(t *testing.T) {
	keyPEM := testKeyPEM(t)
	// A key file written before encryption existed: no DEK.
	nk, err := DecodeKeyFile(keyPEM, nil)
	if err != nil || nk.DEK != nil || !bytes.Equal(nk.KeyPEM, keyPEM) {
		t.Fatalf("legacy file: %+v, %v", nk, err)
	}
	dek := mustKey(t)
	b, err := EncodeKeyFile(NodeKeys{KeyPEM: keyPEM, DEK: &dek}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if IsLockedKeyFile(b) || !bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Fatalf("plain file:\n%s", b)
	}
	// Go's TLS loaders still read the key in it.
	block, _ := pem.Decode(b)
	if _, err := x509.ParseECPrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
	nk, err = DecodeKeyFile(b, nil)
	if err != nil || nk.DEK == nil || !nk.DEK.Equal(dek) || !bytes.Equal(nk.KeyPEM, keyPEM) {
		t.Fatalf("plain file: %+v, %v", nk, err)
	}
}

func TestKeyFileLockedRewrap(t *testing.T) {
	keyPEM := testKeyPEM(t)
	dek, kek1, kek2 := mustKey(t), mustKey(t), mustKey(t)
	b, err := EncodeKeyFile(NodeKeys{KeyPEM: keyPEM, DEK: &dek}, &kek1)
	if err != nil {
		t.Fatal(err)
	}
	if !IsLockedKeyFile(b) || bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Fatalf("locked file shows the key:\n%s", b)
	}
	if _, err := DecodeKeyFile(b, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("no kek: %v", err)
	}
	if _, err := DecodeKeyFile(b, &kek2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong kek: %v", err)
	}
	nk, err := DecodeKeyFile(b, &kek1)
	if err != nil || !nk.DEK.Equal(dek) || !bytes.Equal(nk.KeyPEM, keyPEM) {
		t.Fatalf("right kek: %+v, %v", nk, err)
	}
	// Rotation re-wraps the same DEK, so the Raft data is not rewritten.
	b2, err := EncodeKeyFile(nk, &kek2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeKeyFile(b2, &kek1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old kek after rotation: %v", err)
	}
	nk2, err := DecodeKeyFile(b2, &kek2)
	if err != nil || !nk2.DEK.Equal(dek) {
		t.Fatalf("new kek: %+v, %v", nk2, err)
	}
	// Turning autolock off writes the DEK plain again.
	b3, err := EncodeKeyFile(nk2, nil)
	if err != nil {
		t.Fatal(err)
	}
	nk3, err := DecodeKeyFile(b3, nil)
	if err != nil || !nk3.DEK.Equal(dek) {
		t.Fatalf("unlocked again: %+v, %v", nk3, err)
	}
	// A damaged sealed file is refused, not misread.
	block, _ := pem.Decode(b)
	block.Bytes[len(block.Bytes)/2] ^= 1
	if _, err := DecodeKeyFile(pem.EncodeToMemory(block), &kek1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered file: %v", err)
	}
}

// BenchmarkSealOpen is the CPU cost encryption at rest adds per Raft entry.
func BenchmarkSealOpen(b *testing.B) {
	k, _ := NewKey()
	plain := bytes.Repeat([]byte("x"), 1024)
	ad := []byte("raft-log 12345678")
	b.SetBytes(int64(len(plain)))
	for range b.N {
		s, err := Seal(k, plain, ad)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(k, s, ad); err != nil {
			b.Fatal(err)
		}
	}
}
