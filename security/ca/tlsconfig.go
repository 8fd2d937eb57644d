package ca

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// ServerTLSConfig is the config for a node's listener. The server always
// presents its node certificate. A client certificate is verified against
// the root if one is sent, but not required: a joining node has no
// certificate yet, so each handler decides whether the call needs one
// (check with root.VerifyPeer(state.PeerCertificates)).
func ServerTLSConfig(certPEM, keyPEM []byte, root *RootCA, nextProtos []string) (*tls.Config, error) {
	if root == nil {
		return nil, errors.New("server TLS config: no root CA")
	}
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("server TLS config: a server needs a certificate and key")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("server TLS config: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    root.Pool(),
		MinVersion:   tls.VersionTLS13,
		NextProtos:   nextProtos,
		// crypto/tls has already chain-checked a client certificate against
		// ClientCAs; this adds the identity check so a certificate that
		// chains but names no valid node (or another cluster) fails the
		// handshake instead of reaching a handler.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			_, err := root.VerifyPeer(cs.PeerCertificates)
			return err
		},
	}, nil
}

// ClientTLSConfig is the config for dialing another node. It presents the
// node certificate if there is one (certPEM and keyPEM both nil means
// none) and accepts a server whose certificate chains to root and carries
// a valid identity. Go's hostname verification is switched off and
// replaced by that check, because peers are dialed by IP:port and their
// certificates are not bound to addresses.
func ClientTLSConfig(certPEM, keyPEM []byte, root *RootCA, nextProto string) (*tls.Config, error) {
	if root == nil {
		return nil, errors.New("client TLS config: no root CA")
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Not insecure: VerifyConnection below does the chain check
		// against our root; only the hostname check is skipped.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := root.VerifyPeer(cs.PeerCertificates)
			if err != nil {
				return fmt.Errorf("server certificate refused: %w", err)
			}
			return nil
		},
	}
	if nextProto != "" {
		cfg.NextProtos = []string{nextProto}
	}
	switch {
	case len(certPEM) == 0 && len(keyPEM) == 0:
		return cfg, nil
	case len(certPEM) == 0 || len(keyPEM) == 0:
		return nil, errors.New("client TLS config: need both certificate and key, or neither")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client TLS config: %w", err)
	}
	// Always send the certificate. With plain Certificates, crypto/tls
	// silently sends none when the server's list of acceptable CAs does
	// not name our issuer, which would turn "wrong cluster" into a
	// confusing "no certificate" at the server.
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &cert, nil
	}
	return cfg, nil
}

// FetchInsecureConfig is for a joining node's very first contact, before it
// knows the cluster's root CA. It verifies nothing and presents nothing. It
// must only be used to download the root CA certificate, which the caller
// then accepts only if jointoken's digest of it matches the join token;
// nothing received over this connection may be trusted before that check.
func FetchInsecureConfig(nextProto string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // by design; see above
	}
	if nextProto != "" {
		cfg.NextProtos = []string{nextProto}
	}
	return cfg
}
