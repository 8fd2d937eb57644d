// Package backupfile is the format of a flotilla cluster backup: one
// self-describing file holding the whole replicated state (as a Raft
// snapshot would) and what a restore needs to know about it.
//
// Layout, all integers big-endian:
//
//	"flotilla-backup\n"         16-byte signature
//	uint32 format version       (FormatVersion)
//	uint32 header length, then the header as JSON
//	uint64 body length, then the body (the state snapshot)
//	sha256 of every byte before it (32 bytes)
//
// The signature is text so `head -1 FILE` tells what the file is. Every
// length is checked against the bytes present and the checksum covers the
// header too, so a truncated, corrupt or foreign file is refused whole.
package backupfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Magic is the signature every backup file starts with.
const Magic = "flotilla-backup\n"

// FormatVersion is the layout version this code writes and reads.
const FormatVersion = 1

// maxHeader bounds the header so a damaged length cannot make Decode
// allocate much.
const maxHeader = 1 << 20

// Peer is a manager of the cluster when the backup was taken.
type Peer struct {
	NodeID string
	Addr   string
}

// Header describes what the body holds.
type Header struct {
	// ClusterID is the ID of the cluster the state belongs to.
	ClusterID string
	// Index is the Raft log index of the last write the state reflects;
	// Term is the leader's term when the backup was taken.
	Index uint64
	Term  uint64
	// Created is when the backup was taken (the leader's clock).
	Created time.Time
	// FlotillaVersion is the version of the manager that took it.
	FlotillaVersion string
	// Managers are the Raft members at backup time: workers that survive a
	// total loss look for managers at these addresses.
	Managers []Peer `json:",omitempty"`
}

// ErrNotBackup means the data does not start with the backup signature.
var ErrNotBackup = errors.New("not a flotilla backup file: it does not start with the flotilla-backup signature")

// Encode writes one backup file.
func Encode(w io.Writer, h Header, body []byte) error {
	hj, err := json.Marshal(h)
	if err != nil {
		return err
	}
	sum := sha256.New()
	mw := io.MultiWriter(w, sum)
	var buf bytes.Buffer
	buf.WriteString(Magic)
	_ = binary.Write(&buf, binary.BigEndian, uint32(FormatVersion))
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(hj)))
	buf.Write(hj)
	_ = binary.Write(&buf, binary.BigEndian, uint64(len(body)))
	if _, err := mw.Write(buf.Bytes()); err != nil {
		return err
	}
	if _, err := mw.Write(body); err != nil {
		return err
	}
	_, err = w.Write(sum.Sum(nil))
	return err
}

// Decode checks a whole backup file and returns its header and body. It
// refuses anything that is not exactly one intact backup of this format.
func Decode(data []byte) (Header, []byte, error) {
	var h Header
	if len(data) < len(Magic) || string(data[:len(Magic)]) != Magic {
		return h, nil, ErrNotBackup
	}
	rest := data[len(Magic):]
	if len(rest) < 8 {
		return h, nil, truncated(len(data))
	}
	if v := binary.BigEndian.Uint32(rest); v != FormatVersion {
		return h, nil, fmt.Errorf("the backup has format version %d and this flotilla reads version %d: restore it with the flotilla version that wrote it (or a newer one)", v, FormatVersion)
	}
	hlen := uint64(binary.BigEndian.Uint32(rest[4:]))
	rest = rest[8:]
	if hlen > maxHeader {
		return h, nil, fmt.Errorf("the backup is corrupt: its header claims %d bytes", hlen)
	}
	if uint64(len(rest)) < hlen+8 {
		return h, nil, truncated(len(data))
	}
	hj := rest[:hlen]
	rest = rest[hlen:]
	blen := binary.BigEndian.Uint64(rest)
	rest = rest[8:]
	if uint64(len(rest)) < sha256.Size || blen > uint64(len(rest)-sha256.Size) {
		return h, nil, truncated(len(data))
	}
	if extra := uint64(len(rest)) - blen - sha256.Size; extra != 0 {
		return h, nil, fmt.Errorf("the backup is corrupt: %d unexpected bytes after its end", extra)
	}
	end := len(data) - sha256.Size
	if got := sha256.Sum256(data[:end]); !bytes.Equal(got[:], data[end:]) {
		return h, nil, errors.New("the backup is corrupt: its sha256 checksum does not match its content")
	}
	if err := json.Unmarshal(hj, &h); err != nil {
		return h, nil, fmt.Errorf("the backup's header is unreadable: %v", err)
	}
	if h.ClusterID == "" || h.Index == 0 {
		return h, nil, errors.New("the backup's header names no cluster or Raft index")
	}
	return h, rest[:blen], nil
}

func truncated(n int) error {
	return fmt.Errorf("the backup is truncated: its %d bytes end before the content its header announces", n)
}
