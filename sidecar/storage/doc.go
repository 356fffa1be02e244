// Package storage is Warden's store on etcd: the key layout and the codec of
// the records kept there, the embedded single-member etcd server, and the
// Replica that fills a node's memdb state from the store by list-then-watch.
//
// The admin API writes records through the same layout and codec, so the
// side that reads the store and the side that writes it agree by
// construction. docs/storage.md describes the layout for operators.
package storage
