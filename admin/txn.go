package admin

import (
	"context"
	"errors"
	"net/http"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// commit runs a transaction: ops when every cmp holds, else probes. On
// success it records the revision for RevisionHeader and waits, at most
// WriteWait, for this node's replica to apply it, so that the caller reads
// its own write here and the revision it is given is usable at once.
func (s *Server) commit(c *call, cmps []clientv3.Cmp, ops, probes []clientv3.Op) (*clientv3.TxnResponse, error) {
	resp, err := s.kv.Txn(c.r.Context()).If(cmps...).Then(ops...).Else(probes...).Commit()
	if err != nil {
		if refused := refusal(err); refused != nil {
			s.log.Warn("the store refused a write", "method", c.r.Method, "path", c.r.URL.EscapedPath(), "error", err.Error())
			return nil, refused
		}
		// A transaction that timed out or lost its connection may still
		// have committed: say so, so that clients read back rather than
		// retry blindly.
		s.log.Warn("a write's outcome is unknown", "method", c.r.Method, "path", c.r.URL.EscapedPath(), "error", err.Error())
		return nil, errorf(http.StatusServiceUnavailable,
			"The store did not confirm this write (%s); it may or may not have been applied: read the record back before retrying", err)
	}
	if resp.Succeeded {
		c.rev = resp.Header.Revision
		s.awaitReplica(c.r.Context(), c.rev)
	}
	return resp, nil
}

// refusal turns an error with which etcd definitely refused a transaction
// (nothing was written) into the answer to give, or returns nil when the
// outcome of the transaction is unknown.
func refusal(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrRequestTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "The change is too large for the store to take in one transaction (%s); nothing was written", err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return errorf(http.StatusInsufficientStorage, "The store is out of space (its quota is reached); nothing was written")
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted, codes.PermissionDenied, codes.Unauthenticated:
		return errorf(http.StatusServiceUnavailable, "The store refused this write (%s); nothing was written", err)
	}
	return nil
}

func (s *Server) awaitReplica(ctx context.Context, rev int64) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteWait)
	defer cancel()
	if _, err := s.eng.State().WaitRevision(ctx, rev); err != nil {
		s.log.Warn("a write is committed but this node's replica has not applied it yet", "revision", rev, "error", err.Error())
	}
}
