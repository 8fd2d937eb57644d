// Package jointoken creates and parses cluster join tokens.
//
// A token has Docker swarm's shape, SWMTKN-1-<digest>-<secret>:
//
//   - digest is the SHA-256 of the cluster root CA certificate (DER) in
//     lowercase base 36, left-padded with '0' to 50 characters. A joining
//     node downloads the CA over an unauthenticated connection and accepts
//     it only if its digest matches the one in the token, which turns the
//     token into a trust anchor for that first contact.
//   - secret is 128 random bits in lowercase base 36, left-padded to 25
//     characters. It proves to the managers that the joiner was given the
//     token; worker and manager tokens carry different secrets, so the
//     secret also decides the role a joiner is admitted with.
//
// Parsing is strict and canonical: every string Parse accepts is exactly
// what Token.String would produce (after surrounding whitespace is
// trimmed), so a token has one spelling and comparing tokens is simple.
package jointoken
