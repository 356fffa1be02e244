// Package sdk is the Go client of Warden: token minting for agents that
// hold a private key, and (with the admin and check APIs) typed calls to a
// Warden deployment. The wire types and matching rules live in package
// model.
package sdk
