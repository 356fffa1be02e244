package model

import "strings"

// ActionMatches reports whether a granted action matches a requested one.
//
// Equal strings match. Otherwise both are split on ":" and the requested
// segments are walked in order: a granted segment that is missing or empty
// denies; "*" allows at once (later granted segments are ignored); an equal
// segment moves on; anything else denies. Running out of requested segments
// without meeting "*" denies. Matching is case-sensitive, so "function:*"
// matches "function:get" but not "function", and "a:b:c" does not match
// "a:b".
func ActionMatches(granted, requested string) bool {
	if granted == requested {
		return true
	}
	g, r := granted, requested
	grantedDone := false
	for {
		if grantedDone {
			return false
		}
		rseg, rrest, rmore := strings.Cut(r, ":")
		gseg, grest, gmore := strings.Cut(g, ":")
		switch {
		case gseg == "":
			return false
		case gseg == "*":
			return true
		case gseg != rseg:
			return false
		case !rmore:
			return false
		}
		grantedDone = !gmore
		g, r = grest, rrest
	}
}
