package backupfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

func sample(t testing.TB) ([]byte, Header, []byte) {
	t.Helper()
	h := Header{ClusterID: "c1", Index: 42, Term: 3, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		FlotillaVersion: "0.1.0", Managers: []Peer{{NodeID: "n1", Addr: "127.0.0.1:2377"}}}
	body := []byte(`{"Version":1,"Index":42,"Tables":{}}`)
	var buf bytes.Buffer
	if err := Encode(&buf, h, body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), h, body
}

func TestRoundTrip(t *testing.T) {
	data, h, body := sample(t)
	if !strings.HasPrefix(string(data), Magic) {
		t.Fatalf("the file does not start with the signature: %q", data[:20])
	}
	gh, gb, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if gh.ClusterID != h.ClusterID || gh.Index != h.Index || gh.Term != h.Term || !gh.Created.Equal(h.Created) ||
		gh.FlotillaVersion != h.FlotillaVersion || len(gh.Managers) != 1 || gh.Managers[0] != h.Managers[0] {
		t.Errorf("header changed: %+v, want %+v", gh, h)
	}
	if !bytes.Equal(gb, body) {
		t.Errorf("body changed: %q", gb)
	}
}

func TestRefused(t *testing.T) {
	data, _, _ := sample(t)
	flip := func(i int) []byte {
		b := bytes.Clone(data)
		b[i] ^= 0x40
		return b
	}
	wrongVersion := bytes.Clone(data)
	binary.BigEndian.PutUint32(wrongVersion[len(Magic):], FormatVersion+1)
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "not a flotilla backup", nil},
		{"foreign", "not a flotilla backup", []byte("PK\x03\x04 this is a zip file, not a backup at all")},
		{"json", "not a flotilla backup", []byte(`{"Version":1,"Index":42,"Tables":{}}`)},
		{"signature only", "truncated", []byte(Magic)},
		{"wrong version", "format version 2", wrongVersion},
		{"truncated body", "truncated", data[:len(data)-40]},
		{"truncated checksum", "truncated", data[:len(data)-1]},
		{"trailing bytes", "unexpected bytes", append(bytes.Clone(data), 'x')},
		{"body flipped", "checksum", flip(len(data) - 40)},
		{"header flipped", "checksum", flip(len(Magic) + 12)},
		{"checksum flipped", "checksum", flip(len(data) - 1)},
		{"huge header length", "corrupt", func() []byte {
			b := bytes.Clone(data)
			binary.BigEndian.PutUint32(b[len(Magic)+4:], 1<<31)
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, _, err := Decode([]byte("nope")); !errors.Is(err, ErrNotBackup) {
		t.Errorf("a foreign file gives %v, not ErrNotBackup", err)
	}
}

// Every prefix of a backup is refused: a copy cut short anywhere is never
// taken for a whole one.
func TestEveryTruncationRefused(t *testing.T) {
	data, _, _ := sample(t)
	for n := range len(data) {
		if _, _, err := Decode(data[:n]); err == nil {
			t.Fatalf("a backup cut to %d of %d bytes was accepted", n, len(data))
		}
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// the same bytes (nothing is accepted that was not written by Encode).
func FuzzDecode(f *testing.F) {
	data, _, _ := sample(f)
	f.Add(data)
	f.Add([]byte(Magic))
	f.Add(data[:len(data)/2])
	f.Fuzz(func(t *testing.T, in []byte) {
		h, body, err := Decode(in)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, h, body); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Decode(out.Bytes()); err != nil {
			t.Fatalf("a re-encoded accepted backup is refused: %v", err)
		}
	})
}
