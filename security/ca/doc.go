// Package ca is the cluster's certificate authority: a self-signed root and
// the node certificates it issues for mutual TLS between nodes.
//
// A node's identity lives in its certificate, assigned by the CA rather
// than requested by the node:
//
//   - Subject CommonName is the node ID,
//   - Subject OrganizationalUnit[0] is the role ("flotilla-manager" or
//     "flotilla-worker"),
//   - Subject Organization[0] is the cluster ID.
//
// Nodes are addressed by IP:port and their addresses change, so peers are
// authenticated by "signed by our root CA" plus the identity above, never
// by hostname. The TLS configs here are built around that: the client side
// skips Go's hostname-based verification and does its own chain check
// against the root instead.
//
// All keys are ECDSA P-256.
package ca
