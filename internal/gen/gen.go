// Package gen writes realistic synthetic Entra diagnostic streams for
// benchmarks and load tests: Event Hubs bodies of audit and sign-in records,
// a small share of them SSPR events, about 1.2 KB per record.
package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// Options shape the stream.
type Options struct {
	Records        int     // total records
	PerBody        int     // records per body (one body per line)
	SSPRShare      float64 // share of records that are SSPR events, e.g. 0.02
	Seed           uint64
	Start          time.Time
	PoisonEvery    int // every Nth body is cut short, a truncated upload (0 = never; 1 is refused)
	TenantID       string
	SSPRActivities []string // activity names used for SSPR records; nil = the common ones
}

// Stats says what was written, for assertions.
type Stats struct {
	Bodies   int
	Records  int
	SSPR     int
	Poison   int
	Bytes    int64
	SSPRIDs  []string // only when collected
	ByAction map[string]int
}

var defaultActivities = []struct{ name, action string }{
	{"Self-service password reset flow activity progress", "password-reset-progress"},
	{"Self-service password reset flow activity progress", "password-reset-progress"},
	{"Self-service password reset flow activity progress", "password-reset-progress"},
	{"Reset password (self-service)", "password-reset"},
	{"Blocked from self-service password reset", "password-reset-blocked"},
	{"Unlock user account (self-service)", "account-unlock"},
	{"Change password (self-service)", "password-change"},
	{"User registered security info", "security-info-registered"},
}

var otherActivities = []string{"Update user", "Add member to group", "Update device", "Add app role assignment to service principal", "Update service principal", "Remove member from group"}

var reasons = []string{"User submitted their user ID", "User started the mobile SMS verification option", "User successfully reset password", "User completed the email verification option"}

// Write writes the stream to w. collectIDs keeps the SSPR event ids. Cut
// bodies come on top of the records asked for and hold no SSPR event: the
// stats count the good bodies' records and events.
func Write(w io.Writer, o Options, collectIDs bool) (Stats, error) {
	if o.PoisonEvery == 1 {
		// Every body cut: the records asked for would never be written.
		return Stats{}, errors.New("generate: PoisonEvery must be 0 or at least 2")
	}
	if o.PerBody <= 0 {
		o.PerBody = 100
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.TenantID == "" {
		o.TenantID = "50a74cff-026f-4c84-aa8f-f5f8d837115f"
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	bw := bufio.NewWriterSize(w, 1<<20)
	st := Stats{ByAction: map[string]int{}}
	var b []byte
	ts := o.Start
	for st.Records < o.Records {
		b = b[:0]
		n := min(o.PerBody, o.Records-st.Records)
		poison := o.PoisonEvery > 0 && (st.Bodies+1)%o.PoisonEvery == 0
		b = append(b, `{"records":[`...)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			ts = ts.Add(time.Duration(rng.IntN(500)) * time.Millisecond)
			// A cut body holds no SSPR event, so that every event
			// counted can be expected in the output.
			if rng.Float64() < o.SSPRShare && !poison {
				a := defaultActivities[rng.IntN(len(defaultActivities))]
				name, action := a.name, a.action
				if len(o.SSPRActivities) > 0 {
					name = o.SSPRActivities[rng.IntN(len(o.SSPRActivities))]
					action = ""
				}
				id := "SSPR_" + uuid(rng) + "_" + strconv.Itoa(rng.IntN(1e8))
				b = ssprRecord(b, rng, ts, o.TenantID, id, name)
				st.SSPR++
				st.ByAction[action]++
				if collectIDs {
					st.SSPRIDs = append(st.SSPRIDs, id)
				}
			} else if rng.IntN(3) == 0 {
				b = signInRecord(b, rng, ts, o.TenantID)
			} else {
				b = auditRecord(b, rng, ts, o.TenantID)
			}
		}
		b = append(b, "]}\n"...)
		if poison {
			// Cut the body in the middle: a truncated upload.
			b = append(b[:len(b)/2], '\n')
			st.Poison++
		} else {
			st.Records += n
		}
		st.Bodies++
		st.Bytes += int64(len(b))
		if _, err := bw.Write(b); err != nil {
			return st, fmt.Errorf("generate: %w", err)
		}
	}
	return st, bw.Flush()
}

// UUID returns a random version-less UUID-shaped string drawn from rng, so
// that a seed gives the same ids.
func UUID(rng *rand.Rand) string { return uuid(rng) }

func uuid(rng *rand.Rand) string {
	const hex = "0123456789abcdef"
	var u [36]byte
	for i := range u {
		switch i {
		case 8, 13, 18, 23:
			u[i] = '-'
		default:
			u[i] = hex[rng.IntN(16)]
		}
	}
	return string(u[:])
}

func ip(rng *rand.Rand) string {
	return "198.51." + strconv.Itoa(rng.IntN(256)) + "." + strconv.Itoa(1+rng.IntN(254))
}

func stamp(t time.Time) string { return t.Format("2006-01-02T15:04:05.0000000Z") }

func ssprRecord(b []byte, rng *rand.Rand, ts time.Time, tenant, id, name string) []byte {
	user, corr, addr := uuid(rng), uuid(rng), ip(rng)
	upn := "user" + strconv.Itoa(rng.IntN(100000)) + "@contoso.example"
	result := "success"
	if rng.IntN(10) == 0 {
		result = "failure"
	}
	return fmt.Appendf(b, `{"time":"%s","resourceId":"/tenants/%s/providers/Microsoft.aadiam","operationName":%q,"operationVersion":"1.0","category":"AuditLogs","tenantId":"%s","resultSignature":"None","durationMs":0,"callerIpAddress":"%s","correlationId":"%s","Level":4,"properties":{"id":"%s","category":"UserManagement","correlationId":"%s","result":"%s","resultReason":%q,"activityDisplayName":%q,"activityDateTime":"%s","loggedByService":"Self-service Password Management","operationType":"Update","initiatedBy":{"user":{"id":"%s","displayName":"Test User","userPrincipalName":"%s","ipAddress":"%s","roles":[]}},"targetResources":[{"id":"%s","displayName":"Test User","type":"User","userPrincipalName":"%s","modifiedProperties":[],"administrativeUnits":[]}],"additionalDetails":[{"key":"User-Agent","value":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"}]}}`,
		stamp(ts), tenant, name, tenant, addr, corr, id, corr, result, reasons[rng.IntN(len(reasons))], name, stamp(ts), user, upn, addr, user, upn)
}

func auditRecord(b []byte, rng *rand.Rand, ts time.Time, tenant string) []byte {
	corr, actor, target := uuid(rng), uuid(rng), uuid(rng)
	name := otherActivities[rng.IntN(len(otherActivities))]
	return fmt.Appendf(b, `{"time":"%s","resourceId":"/tenants/%s/providers/Microsoft.aadiam","operationName":%q,"operationVersion":"1.0","category":"AuditLogs","tenantId":"%s","resultSignature":"None","durationMs":0,"callerIpAddress":"%s","correlationId":"%s","Level":4,"properties":{"id":"Directory_%s_%d","category":"UserManagement","correlationId":"%s","result":"success","resultReason":"","activityDisplayName":%q,"activityDateTime":"%s","loggedByService":"Core Directory","operationType":"Update","initiatedBy":{"app":{"appId":null,"displayName":"Microsoft Substrate Management","servicePrincipalId":"%s","servicePrincipalName":null}},"targetResources":[{"id":"%s","displayName":null,"type":"User","userPrincipalName":"member%d@contoso.example","modifiedProperties":[{"displayName":"AccountEnabled","oldValue":"[false]","newValue":"[true]"}],"administrativeUnits":[]}],"additionalDetails":[{"key":"UserType","value":"Member"}]}}`,
		stamp(ts), tenant, name, tenant, ip(rng), corr, corr, rng.IntN(1e6), corr, name, stamp(ts), actor, target, rng.IntN(100000))
}

func signInRecord(b []byte, rng *rand.Rand, ts time.Time, tenant string) []byte {
	id, user := uuid(rng), uuid(rng)
	return fmt.Appendf(b, `{"time":"%s","resourceId":"/tenants/%s/providers/Microsoft.aadiam","operationName":"Sign-in activity","operationVersion":"1.0","category":"SignInLogs","tenantId":"%s","resultType":"0","resultSignature":"None","durationMs":0,"callerIpAddress":"%s","correlationId":"%s","identity":"Test User","Level":4,"location":"US","properties":{"id":"%s","createdDateTime":"%s","userDisplayName":"Test User","userPrincipalName":"member%d@contoso.example","userId":"%s","appId":"%s","appDisplayName":"Office 365 Exchange Online","ipAddress":"%s","status":{"errorCode":0},"clientAppUsed":"Browser","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36","conditionalAccessStatus":"notApplied","isInteractive":true,"tokenIssuerType":"AzureAD","riskLevelAggregated":"none","riskState":"none","deviceDetail":{"deviceId":"","operatingSystem":"Linux","browser":"Chrome 120.0"},"location":{"city":"Seattle","state":"Washington","countryOrRegion":"US"},"appliedConditionalAccessPolicies":[]}}`,
		stamp(ts), tenant, tenant, ip(rng), id, id, stamp(ts), rng.IntN(100000), user, uuid(rng), ip(rng))
}
