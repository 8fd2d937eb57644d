package raftnode

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/flotilla-org/flotilla/security/encryption"
)

// encryptedSnapshots seals whole snapshots with the DEK. A snapshot is the
// cluster state (a few MB at most), so it is sealed in one piece when the
// sink closes; that keeps a half-written snapshot from ever opening.
// Snapshots written before encryption existed are read plainly.
type encryptedSnapshots struct {
	raft.SnapshotStore
	dek encryption.Key
}

func snapAD(id string) []byte { return []byte("raft-snapshot " + id) }

func (s *encryptedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration,
	confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, err
	}
	return &sealingSink{SnapshotSink: sink, dek: s.dek}, nil
}

func (s *encryptedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("read raft snapshot %s: %w", id, err)
	}
	if encryption.IsSealed(data) {
		if data, err = encryption.Open(s.dek, data, snapAD(id)); err != nil {
			return nil, nil, fmt.Errorf("raft snapshot %s: %w", id, err)
		}
	}
	m := *meta
	// Raft sends Size bytes to a follower that installs the snapshot: it
	// must be the plaintext's size.
	m.Size = int64(len(data))
	return &m, io.NopCloser(bytes.NewReader(data)), nil
}

type sealingSink struct {
	raft.SnapshotSink
	dek  encryption.Key
	buf  bytes.Buffer
	done bool
}

func (s *sealingSink) Write(p []byte) (int, error) {
	if s.done {
		return 0, errors.New("raft snapshot sink already closed")
	}
	return s.buf.Write(p)
}

func (s *sealingSink) Cancel() error {
	s.done = true
	return s.SnapshotSink.Cancel()
}

// Close seals and writes the snapshot once: raft's RecoverCluster closes a
// sink the FSM's Persist already closed, which must not write it twice.
func (s *sealingSink) Close() error {
	if s.done {
		return nil
	}
	s.done = true
	sealed, err := encryption.Seal(s.dek, s.buf.Bytes(), snapAD(s.ID()))
	if err != nil {
		_ = s.SnapshotSink.Cancel()
		return err
	}
	if _, err := s.SnapshotSink.Write(sealed); err != nil {
		_ = s.SnapshotSink.Cancel()
		return err
	}
	return s.SnapshotSink.Close()
}
