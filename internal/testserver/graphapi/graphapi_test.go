package graphapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

// credential is what the exporter uses: azidentity's client-secret
// credential pointed at the double as its authority.
func credential(t *testing.T, s *graphapi.Server, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(graphapi.TenantID, graphapi.ClientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()},
			Transport: s.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		// The double is not a Microsoft cloud: without this MSAL asks
		// login.microsoftonline.com to validate it.
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func token(t *testing.T, s *graphapi.Server) string {
	t.Helper()
	tok, err := credential(t, s, graphapi.ClientSecret).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{s.URL() + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	return tok.Token
}

func get(t *testing.T, s *graphapi.Server, tok, path string) (int, http.Header, map[string]any) {
	t.Helper()
	link := path
	if !strings.HasPrefix(path, "https://") {
		link = s.URL() + path
	}
	req, err := http.NewRequest(http.MethodGet, link, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: body is not JSON: %s", path, b)
	}
	return resp.StatusCode, resp.Header, body
}

// TestAzidentityAgainstTheDouble: MSAL reads the tenant's OpenID
// configuration from the authority, then posts the client-credentials
// grant to the token endpoint it names; it caches the token.
func TestAzidentityAgainstTheDouble(t *testing.T) {
	s := graphapi.New(t)
	cred := credential(t, s, graphapi.ClientSecret)
	for range 2 {
		if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
			t.Fatalf("GetToken: %v", err)
		}
	}
	if st := s.Stats(); st.TokenRequests != 1 || st.DiscoveryRequests != 1 {
		t.Errorf("stats %+v, want one discovery and one token request (the token is cached)", st)
	}

	_, err := credential(t, s, "wrong").GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Errorf("wrong secret: %v, want the AADSTS7000215 invalid_client error", err)
	}
	if err != nil && strings.Contains(err.Error(), graphapi.ClientSecret) {
		t.Error("the error carries the secret")
	}
}

// TestTokenEndpointErrors: the error bodies of the v2.0 token endpoint.
func TestTokenEndpointErrors(t *testing.T) {
	s := graphapi.New(t)
	post := func(tenant string, form url.Values) (int, map[string]any) {
		resp, err := s.Client().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {graphapi.ClientID}, "client_secret": {graphapi.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}}
	status, body := post(graphapi.TenantID, good)
	if status != http.StatusOK || body["token_type"] != "Bearer" || body["access_token"] == "" || body["expires_in"] == nil {
		t.Errorf("good request: %d %v", status, body)
	}
	for _, c := range []struct {
		name   string
		tenant string
		change func(url.Values)
		status int
		code   string
	}{
		{"wrong secret", graphapi.TenantID, func(v url.Values) { v.Set("client_secret", "x") }, 401, "invalid_client"},
		{"unknown client", graphapi.TenantID, func(v url.Values) { v.Set("client_id", "x") }, 400, "unauthorized_client"},
		{"scope without /.default", graphapi.TenantID, func(v url.Values) { v.Set("scope", "User.Read") }, 400, "invalid_scope"},
		{"other grant", graphapi.TenantID, func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
		{"unknown tenant", "contoso.example", func(url.Values) {}, 400, "invalid_tenant"},
	} {
		form := url.Values{}
		for k, v := range good {
			form[k] = slices.Clone(v)
		}
		c.change(form)
		status, body := post(c.tenant, form)
		if status != c.status || body["error"] != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, body["error"], c.status, c.code)
		}
		if _, ok := body["error_codes"].([]any); !ok || body["error_description"] == "" || body["trace_id"] == "" || body["correlation_id"] == "" {
			t.Errorf("%s: body %v lacks error_codes, error_description, trace_id or correlation_id", c.name, body)
		}
	}
}

// graphErrorShape checks Graph's error body and returns its code.
func graphErrorShape(t *testing.T, body map[string]any) string {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %v", body)
	}
	inner, ok := e["innerError"].(map[string]any)
	if !ok || inner["request-id"] == nil || inner["date"] == nil {
		t.Errorf("innerError %v lacks request-id or date", e["innerError"])
	}
	if m, _ := e["message"].(string); m == "" {
		t.Errorf("no message: %v", e)
	}
	code, _ := e["code"].(string)
	return code
}

func TestGraphErrors(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(graphapi.User{ID: "u1"})
	tok := token(t, s)
	const path = "/v1.0/users/u1/transitiveMemberOf"

	status, hdr, body := get(t, s, "", path)
	if status != 401 || graphErrorShape(t, body) != "InvalidAuthenticationToken" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("no token: %d %v %q", status, body, hdr.Get("WWW-Authenticate"))
	}
	status, _, body = get(t, s, "not-a-token", path)
	if status != 401 || graphErrorShape(t, body) != "InvalidAuthenticationToken" {
		t.Errorf("unknown token: %d %v", status, body)
	}

	s.Forbid(true)
	status, _, body = get(t, s, tok, path)
	if status != 403 || graphErrorShape(t, body) != "Authorization_RequestDenied" {
		t.Errorf("forbidden: %d %v", status, body)
	}
	s.Forbid(false)

	s.Inject(graphapi.Fault{Status: 429, RetryAfter: "2.128"})
	status, hdr, body = get(t, s, tok, path)
	if status != 429 || hdr.Get("Retry-After") != "2.128" || graphErrorShape(t, body) != "TooManyRequests" {
		t.Errorf("throttled: %d %q %v", status, hdr.Get("Retry-After"), body)
	}
	status, _, _ = get(t, s, tok, path)
	if status != 200 {
		t.Errorf("after the fault: %d", status)
	}

	status, _, body = get(t, s, tok, "/v1.0/users/nobody/transitiveMemberOf")
	if status != 404 || graphErrorShape(t, body) != "Request_ResourceNotFound" {
		t.Errorf("unknown user: %d %v", status, body)
	}
	s.RevokeTokens()
	if status, _, _ := get(t, s, tok, path); status != 401 {
		t.Errorf("revoked token: %d", status)
	}
	if st := s.Stats(); st.Faults != 1 || st.Unauthorized != 3 {
		t.Errorf("stats %+v", st)
	}
}

// collect follows @odata.nextLink from path and returns every value.
func collect(t *testing.T, s *graphapi.Server, tok, path string) ([]map[string]any, int) {
	t.Helper()
	var all []map[string]any
	pages := 0
	for link := path; link != ""; pages++ {
		status, _, body := get(t, s, tok, link)
		if status != 200 {
			t.Fatalf("%s: %d %v", link, status, body)
		}
		if _, ok := body["@odata.context"].(string); !ok {
			t.Errorf("%s: no @odata.context", link)
		}
		for _, v := range body["value"].([]any) {
			all = append(all, v.(map[string]any))
		}
		link, _ = body["@odata.nextLink"].(string)
		if link != "" && !strings.HasPrefix(link, s.URL()+"/") {
			t.Fatalf("nextLink %q is not an absolute URL of the double", link)
		}
	}
	return all, pages
}

func TestMembershipsPagedAndSelected(t *testing.T) {
	s := graphapi.New(t)
	u := graphapi.User{ID: "2f8c6a1e-9d3b-4e07-a5c2-6b1e8d4f0a93", UserPrincipalName: "ada@contoso.example"}
	for i := range 12 {
		u.Groups = append(u.Groups, graphapi.Group{ID: "g" + string(rune('a'+i)), DisplayName: "Group " + string(rune('A'+i)), Direct: i%3 == 0})
	}
	u.Roles = []graphapi.Role{{ID: "r1", DisplayName: "Helpdesk Administrator", RoleTemplateID: "729827e3-9c14-49f7-bb1b-9608f156bbb8", Direct: true}}
	s.AddUser(u)
	s.SetPageSize(5)
	tok := token(t, s)

	all, pages := collect(t, s, tok, "/v1.0/users/"+u.ID+"/transitiveMemberOf?$select=id,displayName&$top=999")
	if len(all) != 13 || pages != 3 {
		t.Fatalf("%d objects in %d pages, want 13 in 3", len(all), pages)
	}
	types := map[string]int{}
	for _, o := range all {
		types[o["@odata.type"].(string)]++
		if len(o) != 3 {
			t.Errorf("$select=id,displayName gave %v", o)
		}
	}
	if types["#microsoft.graph.group"] != 12 || types["#microsoft.graph.directoryRole"] != 1 {
		t.Errorf("types %v", types)
	}
	// By UPN, direct memberships only.
	direct, _ := collect(t, s, tok, "/v1.0/users/ada@contoso.example/memberOf")
	if len(direct) != 5 {
		t.Errorf("memberOf: %d objects, want 4 groups and 1 role", len(direct))
	}
	status, _, body := get(t, s, tok, "/v1.0/users/"+u.ID+"/transitiveMemberOf?$top=1000")
	if status != 400 || graphErrorShape(t, body) != "Request_BadRequest" {
		t.Errorf("$top=1000: %d %v", status, body)
	}
}

func audit(id, name, service, at string) map[string]any {
	return map[string]any{
		"id": id, "category": "UserManagement", "correlationId": "c-" + id, "result": "success", "resultReason": "",
		"activityDisplayName": name, "activityDateTime": at, "loggedByService": service, "operationType": "Update",
		"initiatedBy":       map[string]any{"user": map[string]any{"id": "u-" + id, "userPrincipalName": id + "@contoso.example"}, "app": nil},
		"targetResources":   []any{map[string]any{"id": "u-" + id, "type": "User", "modifiedProperties": []any{}}},
		"additionalDetails": []any{},
	}
}

func TestDirectoryAuditsFilterAndPaging(t *testing.T) {
	s := graphapi.New(t)
	s.AddAudits(
		audit("a1", "Reset password (self-service)", "Self-service Password Management", "2026-03-01T10:00:00Z"),
		audit("a2", "Update user", "Core Directory", "2026-03-01T11:00:00Z"),
		audit("a3", "Self-service password reset flow activity progress", "Self-service Password Management", "2026-03-02T09:00:00.1234567Z"),
		audit("a4", "Reset user password", "Core Directory", "2026-03-03T08:00:00Z"),
		audit("a5", "Blocked from self-service password reset", "Self-service Password Management", "2026-03-04T07:00:00Z"),
	)
	tok := token(t, s)
	ids := func(objs []map[string]any) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o["id"].(string))
		}
		sort.Strings(out)
		return out
	}
	for _, c := range []struct {
		filter string
		want   []string
	}{
		{"loggedByService eq 'Self-service Password Management'", []string{"a1", "a3", "a5"}},
		{"activityDateTime ge 2026-03-02T00:00:00Z and activityDateTime le 2026-03-03T23:59:59.9999999Z", []string{"a3", "a4"}},
		{"loggedByService eq 'self-service password management' and activityDateTime ge 2026-03-01T10:00:00.0000001Z", []string{"a3", "a5"}},
		{"activityDisplayName eq 'Reset user password' or startswith(activityDisplayName,'Reset password')", []string{"a1", "a4"}},
		{"(loggedByService eq 'Core Directory') and initiatedBy/user/id eq 'u-a2'", []string{"a2"}},
	} {
		all, _ := collect(t, s, tok, "/v1.0/auditLogs/directoryAudits?$top=2&$filter="+url.QueryEscape(c.filter))
		if got := ids(all); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.filter, got, c.want)
		}
	}
	for _, bad := range []string{
		"activityDateTime around 2026",
		"activityDateTime lt 2026-03-04T00:00:00Z", // the resource supports eq, ge, le
		"loggedByService ne 'Core Directory'",
		"category eq 'UserManagement'",
		"startswith(loggedByService,'Self')",
	} {
		status, _, body := get(t, s, tok, "/v1.0/auditLogs/directoryAudits?$filter="+url.QueryEscape(bad))
		if status != 400 || graphErrorShape(t, body) != "BadRequest" {
			t.Errorf("bad filter %q: %d %v", bad, status, body)
		}
	}
	s.SetFilterLimit(2)
	if status, _, _ := get(t, s, tok, "/v1.0/auditLogs/directoryAudits?$filter="+url.QueryEscape("id eq 'a1' or id eq 'a2' or id eq 'a3'")); status != 400 {
		t.Errorf("3 comparisons with a limit of 2: %d", status)
	}
	s.SetFilterLimit(0)
	s.Inject(graphapi.Fault{Empty: true, Path: "directoryAudits"})
	status, _, body := get(t, s, tok, "/v1.0/auditLogs/directoryAudits?$top=2")
	if v, _ := body["value"].([]any); status != 200 || len(v) != 0 || body["@odata.nextLink"] == nil {
		t.Errorf("empty page: %d %v", status, body)
	}
	sel, _ := collect(t, s, tok, "/v1.0/auditLogs/directoryAudits?$select=id,activityDisplayName")
	if len(sel) != 5 || len(sel[0]) != 2 {
		t.Errorf("$select: %v", sel)
	}
}

// TestPageShapeMatchesGraph: a directoryAudits page of the double has the
// members and value shape of the page Microsoft's documentation shows.
func TestPageShapeMatchesGraph(t *testing.T) {
	path := filepath.Join(testdata.Shared(t), "entra", "msgraph-docs__directoryaudit-list-v1-example1.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	docRecord := doc["value"].([]any)[0].(map[string]any)

	s := graphapi.New(t)
	s.AddAudits(docRecord)
	status, _, body := get(t, s, token(t, s), "/v1.0/auditLogs/directoryAudits")
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	for k := range doc {
		if _, ok := body[k]; !ok {
			t.Errorf("page lacks %s", k)
		}
	}
	if !strings.HasSuffix(body["@odata.context"].(string), "$metadata#auditLogs/directoryAudits") {
		t.Errorf("@odata.context %v", body["@odata.context"])
	}
	got := body["value"].([]any)[0].(map[string]any)
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(docRecord)
	if string(a) != string(b) {
		t.Errorf("record changed:\n got %s\nwant %s", a, b)
	}
}
