package encryption

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// NodeKeys is what a node keeps in its key file (node.key): its TLS private
// key and, on a manager, the DEK of its Raft data. Keeping both in one file
// makes every change of the KEK one atomic write: there is never a moment
// when one is wrapped with the old KEK and the other with the new.
type NodeKeys struct {
	KeyPEM []byte // the TLS private key, PEM, without headers
	DEK    *Key   // nil until a manager first opens Raft
}

const (
	// lockedBlockType is the PEM type of a key file sealed with a KEK.
	lockedBlockType = "FLOTILLA ENCRYPTED NODE KEY"
	// dekHeader holds the plain DEK in an unlocked key file. TLS loaders
	// ignore PEM headers, so the file stays a valid key file.
	dekHeader = "raft-dek"
)

var keyFileAD = []byte("flotilla node key file v1")

// ErrLocked is returned when a key file is sealed and no KEK was given.
var ErrLocked = errors.New("the node's keys are encrypted with the swarm's unlock key")

// IsLockedKeyFile tells whether the file needs the unlock key to be read.
func IsLockedKeyFile(b []byte) bool {
	block, _ := pem.Decode(b)
	return block != nil && block.Type == lockedBlockType
}

type sealedKeys struct {
	KeyPEM []byte
	DEK    []byte `json:",omitempty"`
}

// EncodeKeyFile renders the key file: sealed with kek, or plain when kek is
// nil (no autolock).
func EncodeKeyFile(k NodeKeys, kek *Key) ([]byte, error) {
	block, _ := pem.Decode(k.KeyPEM)
	if block == nil {
		return nil, errors.New("node key is not PEM")
	}
	if kek == nil {
		block.Headers = nil
		if k.DEK != nil {
			block.Headers = map[string]string{dekHeader: base64.StdEncoding.EncodeToString(k.DEK[:])}
		}
		return pem.EncodeToMemory(block), nil
	}
	sk := sealedKeys{KeyPEM: k.KeyPEM}
	if k.DEK != nil {
		sk.DEK = k.DEK[:]
	}
	plain, err := json.Marshal(sk)
	if err != nil {
		return nil, err
	}
	sealed, err := Seal(*kek, plain, keyFileAD)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: lockedBlockType, Bytes: sealed}), nil
}

// DecodeKeyFile reads a key file. A sealed one needs kek: without it the
// error is ErrLocked, with a wrong one ErrDecrypt.
func DecodeKeyFile(b []byte, kek *Key) (NodeKeys, error) {
	var out NodeKeys
	block, _ := pem.Decode(b)
	if block == nil {
		return out, errors.New("node key file is not PEM")
	}
	if block.Type != lockedBlockType {
		if v, ok := block.Headers[dekHeader]; ok {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(raw) != KeySize {
				return out, fmt.Errorf("node key file: damaged %s header", dekHeader)
			}
			var dek Key
			copy(dek[:], raw)
			out.DEK = &dek
		}
		block.Headers = nil
		out.KeyPEM = pem.EncodeToMemory(block)
		return out, nil
	}
	if kek == nil {
		return out, ErrLocked
	}
	plain, err := Open(*kek, block.Bytes, keyFileAD)
	if err != nil {
		return out, err
	}
	var sk sealedKeys
	if err := json.Unmarshal(plain, &sk); err != nil {
		return out, fmt.Errorf("node key file: %w", err)
	}
	out.KeyPEM = sk.KeyPEM
	if len(sk.DEK) == KeySize {
		var dek Key
		copy(dek[:], sk.DEK)
		out.DEK = &dek
	}
	return out, nil
}
