package model

import "strings"

// NormalizeResource adds a leading "/" and then a trailing "/" when missing,
// and nothing else: no decoding, no case folding, no collapsing of "//".
// NormalizeResource("") is "/".
func NormalizeResource(r string) string {
	lead, trail := normFlags(r)
	switch {
	case !lead && !trail:
		return r
	case lead && trail:
		return "/" + r + "/"
	case lead:
		return "/" + r
	default:
		return r + "/"
	}
}

// normFlags reports whether normalization adds a leading and a trailing "/".
func normFlags(r string) (lead, trail bool) {
	lead = !strings.HasPrefix(r, "/")
	trail = !strings.HasSuffix(r, "/") && !(lead && r == "")
	return lead, trail
}

// ResourceCovers reports whether a grant on resource granted covers the
// requested resource: normalize(requested) starts with normalize(granted).
// It builds neither normalized string, so it never allocates.
func ResourceCovers(granted, requested string) bool {
	gl, gt := normFlags(granted)
	rl, rt := normFlags(requested)
	if !gl && !gt && !rl && !rt {
		return strings.HasPrefix(requested, granted)
	}
	gn := len(granted) + b2i(gl) + b2i(gt)
	rn := len(requested) + b2i(rl) + b2i(rt)
	if gn > rn {
		return false
	}
	for i := 0; i < gn; i++ {
		if normByte(granted, gl, i) != normByte(requested, rl, i) {
			return false
		}
	}
	return true
}

// normByte is byte i of the normalized form of s, where lead says whether
// normalization adds a leading "/". Positions past s are the trailing "/".
func normByte(s string, lead bool, i int) byte {
	if lead {
		if i == 0 {
			return '/'
		}
		i--
	}
	if i < len(s) {
		return s[i]
	}
	return '/'
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AccountFromResource returns the account a resource names: the segment after
// "/account/" in its normalized form. It reports false when the resource is
// not under "/account/" or names no account, in which case the default
// account applies.
func AccountFromResource(r string) (string, bool) {
	r = strings.TrimPrefix(r, "/")
	rest, ok := strings.CutPrefix(r, "account/")
	if !ok {
		return "", false
	}
	acc, _, _ := strings.Cut(rest, "/")
	return acc, acc != ""
}
