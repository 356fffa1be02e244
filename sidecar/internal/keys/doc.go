// Package keys parses issuer key material (PEM, JWKS, kid-to-PEM maps) and
// keeps the keys of issuers that publish them at a URL: fetched on first use,
// refreshed in the background, refetched on an unknown kid at most once per
// rate-limit window, and kept through failed refreshes up to a staleness
// bound.
package keys
