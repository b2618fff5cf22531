package eventhubs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Operators read these errors on one line (check, /readyz, a log field):
// the helpers below name the root cause and, where it is known, the fix.

// transportCause names why a connection could not be made, or "" when err
// is not a connection failure.
func transportCause(err error) string {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("DNS: no such host %s", dnsErr.Name)
		}
		return fmt.Sprintf("DNS: cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there, or a firewall rejects it"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the peer or a proxy"
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert), errors.As(err, &verifyErr):
		return "TLS: the server's certificate is not trusted"
	case errors.As(err, &recordErr):
		return "TLS: the server does not speak TLS"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out: a firewall may drop the traffic"
	}
	return ""
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// withCause is "cause (detail)", or the detail alone when there is no cause.
func withCause(cause string, err error) string {
	detail := oneLine(secret.RedactError(err).Error())
	if cause == "" {
		return detail
	}
	return cause + " (" + detail + ")"
}

// storageAuth is how the checkpoint store authenticates, for hints.
type storageAuth int

const (
	storageSharedKey storageAuth = iota // account key in the connection string
	storageSAS                          // SAS in the connection string
	storageEntra                        // Microsoft Entra ID token
)

func (c CheckpointStoreConfig) auth() storageAuth {
	switch {
	case c.ConnectionString.IsZero():
		return storageEntra
	case strings.Contains(strings.ToLower(c.ConnectionString.Reveal()), "sharedaccesssignature="):
		return storageSAS
	default:
		return storageSharedKey
	}
}

// storageErrorLine is a storage error in one line: the status and error
// code and what to fix, instead of the service's XML document.
func storageErrorLine(err error, auth storageAuth) string {
	var rerr *azcore.ResponseError
	if !errors.As(err, &rerr) {
		return withCause(transportCause(err), err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", rerr.StatusCode, http.StatusText(rerr.StatusCode))
	if rerr.ErrorCode != "" {
		b.WriteString(" " + rerr.ErrorCode)
	}
	msg := storageMessage(rerr)
	if hint := storageHint(rerr, msg, auth); hint != "" {
		b.WriteString(": " + hint)
	} else if msg != "" {
		b.WriteString(": " + msg)
	}
	return b.String()
}

// storageHint says what a storage error means for the checkpoint store.
func storageHint(rerr *azcore.ResponseError, msg string, auth storageAuth) string {
	// Azure answers a bad signature with AuthenticationFailed, Azurite with
	// AuthorizationFailure; both say the server "failed to authenticate".
	authn := rerr.ErrorCode == "AuthenticationFailed" || strings.Contains(msg, "failed to authenticate")
	switch {
	case authn && auth == storageSharedKey:
		return "the account key is wrong (checkpoint_store.connection_string)"
	case authn && auth == storageSAS:
		return "the SAS is wrong or expired (checkpoint_store.connection_string)"
	case authn:
		return "the Microsoft Entra token was refused: check the identity's tenant"
	case rerr.StatusCode == http.StatusForbidden && auth == storageEntra:
		return "the identity needs the Storage Blob Data Contributor role on the container or the account, or the account's firewall refuses this network"
	case rerr.StatusCode == http.StatusForbidden && auth == storageSAS:
		return "the SAS lacks a permission (read, write, list, create) or the account's firewall refuses this network"
	case rerr.StatusCode == http.StatusForbidden:
		return "the account refuses the request: its firewall may refuse this network"
	case rerr.StatusCode == http.StatusNotFound:
		return "no such account or container: check the account URL or name"
	}
	return ""
}

// storageMessage returns the first line of the error document's Message.
func storageMessage(rerr *azcore.ResponseError) string {
	if rerr.RawResponse == nil {
		return ""
	}
	body, err := runtime.Payload(rerr.RawResponse)
	if err != nil || len(body) == 0 {
		return ""
	}
	var doc struct {
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(body, &doc) != nil {
		return ""
	}
	first, _, _ := strings.Cut(strings.TrimSpace(doc.Message), "\n")
	return strings.TrimSpace(first)
}

// compactStorageError replaces the multi-line text of a storage response
// error inside err by its one-line form, keeping the chain.
func compactStorageError(err error, auth storageAuth) error {
	var rerr *azcore.ResponseError
	if err == nil || !errors.As(err, &rerr) {
		return err
	}
	line := storageErrorLine(rerr, auth)
	if resp := rerr.RawResponse; resp != nil && resp.Request != nil {
		line = resp.Request.Method + " " + withoutQuery(resp.Request.URL) + ": " + line
	}
	msg := strings.Replace(err.Error(), rerr.Error(), line, 1)
	return secret.RedactError(rewordedError{msg: oneLine(msg), err: err})
}

// rewordedError prints msg in place of err's own text and keeps err's
// chain for errors.Is and errors.As.
type rewordedError struct {
	msg string
	err error
}

func (e rewordedError) Error() string { return e.msg }
func (e rewordedError) Unwrap() error { return e.err }

// withoutQuery drops the query, which may hold a SAS.
func withoutQuery(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery = "", false
	return c.String()
}

// hubErrorLine is an Event Hubs error in one line with what to fix.
func hubErrorLine(err error, cfg Config) string {
	if cause := transportCause(err); cause != "" {
		return withCause(cause, err)
	}
	msg := oneLine(secret.RedactError(err).Error())
	var ehErr *azeventhubs.Error
	unauthorized := errors.As(err, &ehErr) && ehErr.Code == azeventhubs.ErrorCodeUnauthorizedAccess ||
		strings.Contains(msg, "status code 401") || strings.Contains(msg, "amqp:unauthorized-access")
	switch {
	case unauthorized && cfg.ConnectionString.IsZero():
		return "401 unauthorized: the identity needs the Azure Event Hubs Data Receiver role on the hub or the namespace (" + msg + ")"
	case unauthorized:
		return "401 unauthorized: the key is wrong, or its policy lacks the Listen claim (" + msg + ")"
	case strings.Contains(msg, "status code 404"):
		return "not found: no such event hub in the namespace (" + msg + ")"
	}
	return msg
}
