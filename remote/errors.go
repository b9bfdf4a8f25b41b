package remote

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imgbridge/imgutil"
)

// ErrRegistryUnreachable is matched (errors.Is) when no connection to the
// registry could be made.
var ErrRegistryUnreachable = errors.New("registry unreachable")

// registryError wraps err with what was being done and the sentinel it
// means: imgutil.ErrUnauthorized (401, 403), imgutil.ErrNotFound (404 and
// the *_UNKNOWN codes), ErrRegistryUnreachable (no connection).
func registryError(doing string, err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w: %w", doing, imgutil.ErrUnauthorized, err)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return fmt.Errorf("%s: %w: %w", doing, imgutil.ErrNotFound, err)
		}
		for _, d := range te.Errors {
			if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
				return fmt.Errorf("%s: %w: %w", doing, imgutil.ErrUnauthorized, err)
			}
		}
		return fmt.Errorf("%s: %w", doing, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return fmt.Errorf("%s: %w: %w", doing, ErrRegistryUnreachable, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}
