package sspr

import (
	"bytes"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Steps: entra.sspr.step values, what one record of a self-service
// password reset flow reports.
const (
	StepUserIDSubmitted       = "user-id-submitted"              // the user entered their user ID
	StepOptionsPresented      = "verification-options-presented" // the verification methods were offered
	StepMethodStarted         = "method-started"                 // the user started a verification method
	StepMethodVerified        = "method-verified"                // the user passed a verification method
	StepVerificationCompleted = "verification-completed"         // every required method was passed
	StepPasswordSelected      = "password-selected"              // the user submitted a new password
	StepPasswordReset         = "password-reset"                 // the password was reset
	StepAbandoned             = "abandoned"                      // the user left the flow without finishing it
	StepCanceled              = "canceled"                       // the user canceled the flow
	StepAdminContacted        = "admin-contacted"                // the user chose to contact an administrator
	StepBlocked               = "blocked"                        // the user is blocked from the flow for 24 hours
	StepNotEnabled            = "sspr-not-enabled"               // password reset is not enabled for the user
	StepNoLicense             = "license-missing"                // the user has no license for password reset
	StepCookiesDisabled       = "cookies-disabled"               // the browser refused cookies
	StepMethodsInsufficient   = "methods-insufficient"           // the user has not registered enough methods
	StepWritebackRequired     = "writeback-required"             // the password is managed on premises, writeback is off
	StepOnPremUnreachable     = "on-premises-unreachable"        // the on-premises password reset service did not answer
	StepOnPremFailed          = "on-premises-reset-failed"       // the on-premises reset failed
	StepNotInGroup            = "not-in-sspr-group"              // the user is not in the group password reset is enabled for
	StepDisabledForTenant     = "sspr-disabled-for-tenant"       // password reset is disabled for the whole tenant
)

// Methods: entra.sspr.method values, named like the authMethod values of
// Microsoft Graph's userCredentialUsageDetails (email, mobileSMS,
// mobileCall, officePhone, securityQuestion, appNotification, appCode).
const (
	MethodEmail             = "email"
	MethodMobileSMS         = "mobile-sms"
	MethodMobileCall        = "mobile-call"
	MethodOfficePhone       = "office-phone"
	MethodAppNotification   = "app-notification"
	MethodAppCode           = "app-code"
	MethodSecurityQuestions = "security-questions"
)

// stepOf is what one result reason of a flow record means.
type stepOf struct{ step, method string }

// reasonSteps maps the result reasons of "Self-service password reset flow
// activity progress" (and "Blocked from self-service password reset")
// records to a step and a method. Keys are matched after reasonKey: ASCII
// case folded, runs of white space collapsed, a final period dropped; a
// reason not found whole is looked up again by its first sentence, since
// the failure reasons carry a remediation sentence that varies.
var reasonSteps = func() map[string]stepOf {
	m := map[string]stepOf{}
	for _, table := range [][]reasonEntry{documentedReasons, observedReasons} {
		for _, r := range table {
			k := reasonKey(r.reason)
			if _, dup := m[k]; dup {
				panic("sspr: duplicate reason " + r.reason)
			}
			m[k] = stepOf{r.step, r.method}
		}
	}
	return m
}()

type reasonEntry struct{ reason, step, method string }

// documentedReasons are the values Microsoft documents for the details of
// a password reset activity: "Allowed values for details column" of
// "Reporting options for Azure AD password management", the table its
// "Self serve password reset flow activity progress" section names as "all
// allowed reset activity status reasons" (MicrosoftDocs/azure-docs,
// articles/active-directory/active-directory-passwords-reporting.md,
// commit 05a040af454bf34697f7b27079a56279f7de4761). The failure reasons are
// keyed by their first sentence.
var documentedReasons = []reasonEntry{
	{"User abandoned after completing the email verification option", StepAbandoned, MethodEmail},
	{"User abandoned after completing the mobile SMS verification option", StepAbandoned, MethodMobileSMS},
	{"User abandoned after completing the mobile voice call verification option", StepAbandoned, MethodMobileCall},
	{"User abandoned after completing the office voice call verification option", StepAbandoned, MethodOfficePhone},
	{"User abandoned after completing the security questions option", StepAbandoned, MethodSecurityQuestions},
	{"User abandoned after entering their user ID", StepAbandoned, ""},
	{"User abandoned after starting the email verification option", StepAbandoned, MethodEmail},
	{"User abandoned after starting the mobile SMS verification option", StepAbandoned, MethodMobileSMS},
	{"User abandoned after starting the mobile voice call verification option", StepAbandoned, MethodMobileCall},
	{"User abandoned after starting the office voice call verification option", StepAbandoned, MethodOfficePhone},
	{"User abandoned after starting the security questions option", StepAbandoned, MethodSecurityQuestions},
	{"User abandoned before selecting a new password", StepAbandoned, ""},
	{"User abandoned while selecting a new password", StepAbandoned, ""},
	{"User entered too many invalid SMS verification codes and is blocked for 24 hours", StepBlocked, MethodMobileSMS},
	{"User tried mobile phone voice verification too many times and is blocked for 24 hours", StepBlocked, MethodMobileCall},
	{"User tried office phone voice verification too many times and is blocked for 24 hours", StepBlocked, MethodOfficePhone},
	{"User tried to answer security questions too many times and is blocked for 24 hours", StepBlocked, MethodSecurityQuestions},
	{"User tried to verify a phone number too many times and is blocked for 24 hours", StepBlocked, ""},
	{"User canceled before passing the required authentication methods", StepCanceled, ""},
	{"User canceled before submitting a new password", StepCanceled, ""},
	{"User contacted an admin after trying the email verification option", StepAdminContacted, MethodEmail},
	{"User contacted an admin after trying the mobile SMS verification option", StepAdminContacted, MethodMobileSMS},
	{"User contacted an admin after trying the mobile voice call verification option", StepAdminContacted, MethodMobileCall},
	{"User contacted an admin after trying the office voice call verification option", StepAdminContacted, MethodOfficePhone},
	{"User contacted an admin after trying the security question verification option", StepAdminContacted, MethodSecurityQuestions},
	{"Password reset is not enabled for this user", StepNotEnabled, ""},
	{"User does not have a license", StepNoLicense, ""},
	{"User tried to reset from a device without cookies enabled", StepCookiesDisabled, ""},
	{"User's account has insufficient authentication methods defined", StepMethodsInsufficient, ""},
	{"User's password is managed on-premises", StepWritebackRequired, ""},
	{"We could not reach your on-premises password reset service", StepOnPremUnreachable, ""},
	{"We encountered a problem while resetting the user's on-premises password", StepOnPremFailed, ""},
	{"This user is not a member of the password reset users group", StepNotInGroup, ""},
	{"Password reset has been disabled entirely for this tenant", StepDisabledForTenant, ""},
	{"User successfully reset password", StepPasswordReset, ""},
}

// observedReasons are reasons today's service logs that Microsoft's page
// does not list: the steps of the current flow (its verification options
// by name, including the Microsoft Authenticator ones), as administrators
// quote them from their tenants' audit logs, and the spellings of the
// project's SSPR sample records (testdata/sspr).
var observedReasons = []reasonEntry{
	{"User submitted their user ID", StepUserIDSubmitted, ""},
	{"User was presented with verification options", StepOptionsPresented, ""},
	{"User started the email verification option", StepMethodStarted, MethodEmail},
	{"User completed the email verification option", StepMethodVerified, MethodEmail},
	{"User started the mobile SMS verification option", StepMethodStarted, MethodMobileSMS},
	{"User completed the mobile SMS verification option", StepMethodVerified, MethodMobileSMS},
	{"User started the mobile SMS verification", StepMethodStarted, MethodMobileSMS},
	{"User completed the mobile SMS verification", StepMethodVerified, MethodMobileSMS},
	{"User started the mobile voice call verification option", StepMethodStarted, MethodMobileCall},
	{"User completed the mobile voice call verification option", StepMethodVerified, MethodMobileCall},
	{"User started the office voice call verification option", StepMethodStarted, MethodOfficePhone},
	{"User completed the office voice call verification option", StepMethodVerified, MethodOfficePhone},
	{"User started the security questions verification option", StepMethodStarted, MethodSecurityQuestions},
	{"User completed the security questions verification option", StepMethodVerified, MethodSecurityQuestions},
	{"User started the mobile app notification verification option", StepMethodStarted, MethodAppNotification},
	{"User completed the mobile app notification verification option", StepMethodVerified, MethodAppNotification},
	{"User started the mobile app code verification option", StepMethodStarted, MethodAppCode},
	{"User completed the mobile app code verification option", StepMethodVerified, MethodAppCode},
	{"User started the mobile app code verification", StepMethodStarted, MethodAppCode},
	{"User completed the mobile app code verification", StepMethodVerified, MethodAppCode},
	{"User verified with mobile app notification", StepMethodVerified, MethodAppNotification},
	{"User completed all verification steps required", StepVerificationCompleted, ""},
	{"User submitted a new password", StepPasswordSelected, ""},
	{"User cancelled before passing the required authentication methods", StepCanceled, ""},
	{"User has exceeded the number of reset attempts allowed in 24 hours", StepBlocked, ""},
}

// reasonKey is the form reasons are matched in.
func reasonKey(s string) string { return string(appendReasonKey(nil, s)) }

// appendReasonKey appends s to dst with ASCII letters folded, each run of
// white space made one space, and leading and trailing white space and a
// final period dropped. It allocates only when dst is too small, so that
// the lookup of every flow record's reason costs no garbage.
func appendReasonKey(dst []byte, s string) []byte {
	start := len(dst)
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			space = len(dst) > start
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	if n := len(dst); n > start && dst[n-1] == '.' {
		dst = dst[:n-1]
	}
	return dst
}

// Step returns the step and method a flow record's result reason means,
// and false when the reason is not one the catalog knows.
func Step(reason string) (step, method string, ok bool) {
	var buf [256]byte
	k := appendReasonKey(buf[:0], reason)
	if len(k) == 0 {
		return "", "", false
	}
	if s, found := reasonSteps[string(k)]; found {
		return s.step, s.method, true
	}
	if i := bytes.Index(k, []byte(". ")); i > 0 {
		if s, found := reasonSteps[string(k[:i])]; found {
			return s.step, s.method, true
		}
	}
	return "", "", false
}

// hasSteps reports whether an action's records report flow steps in their
// result reason.
func hasSteps(action string) bool { return action == ActionProgress || action == ActionBlocked }

// UnknownReason reports whether a document is a flow record whose result
// reason maps to no step: the reason is kept in event.reason, and callers
// count such documents so that a new wording Microsoft logs gets noticed.
func UnknownReason(doc *ecs.Event) bool {
	return hasSteps(doc.Event.Action) && doc.Event.Reason != "" && doc.Entra.SSPR.Step == ""
}
