// Package state is Warden's read model: one go-memdb database holding
// accounts, issuers (with their parsed keys), agents, identities and grants.
//
// Writers apply a Batch of changes in one write transaction, or, for more
// changes than a batch should hold (a whole store), make them in a Txn as
// they come; readers take an immutable Snapshot and never block on writers. Every lookup a check needs
// is an index lookup whose cost depends on the agent's own grants, never on
// the total number of grants.
package state
