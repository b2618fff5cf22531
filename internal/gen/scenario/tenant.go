// Package scenario writes labelled synthetic SSPR streams for the detection
// rules: the normal traffic of a tenant of thousands of users over weeks,
// with attacks injected at known times. Every record goes through the
// exporter's own classification and normalization, then gets the fields the
// enrichers would add, so the documents are those the file output writes.
package scenario

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
)

// network is an autonomous system addresses are drawn from.
type network struct {
	asn     int64
	org     string
	country string
	name    string // country name
	prefix  string // first two octets of its addresses
}

// homeNetworks are where employees live; attackNetworks where no employee
// ever connects from.
var homeNetworks = []network{
	{7922, "Comcast Cable Communications, LLC", "US", "United States", "73.12"},
	{7018, "AT&T Services, Inc.", "US", "United States", "99.40"},
	{701, "Verizon Business", "US", "United States", "71.180"},
	{2856, "British Telecommunications PLC", "GB", "United Kingdom", "81.150"},
	{5089, "Virgin Media Limited", "GB", "United Kingdom", "82.30"},
	{3320, "Deutsche Telekom AG", "DE", "Germany", "84.160"},
	{3209, "Vodafone GmbH", "DE", "Germany", "88.70"},
	{3215, "Orange S.A.", "FR", "France", "90.20"},
	{812, "Rogers Communications Canada Inc.", "CA", "Canada", "99.230"},
	{2516, "KDDI CORPORATION", "JP", "Japan", "106.130"},
}

var attackNetworks = []network{
	{14061, "DigitalOcean, LLC", "NL", "Netherlands", "188.166"},
	{9009, "M247 Europe SRL", "RO", "Romania", "185.220"},
	{37148, "Globacom Limited", "NG", "Nigeria", "197.210"},
	{45899, "VNPT Corp", "VN", "Vietnam", "113.160"},
	{28573, "Claro NXT Telecomunicacoes Ltda", "BR", "Brazil", "177.30"},
}

// homeWeights spread the employees over home networks: most in the US.
var homeWeights = []int{22, 16, 12, 10, 6, 10, 5, 8, 7, 4}

// place is where one address is.
type place struct {
	ip  string
	net *network
}

// person is an account of the tenant.
type person struct {
	id, upn, name, domain string
	groups                []group
	roles                 []string
	home                  place
	travel                *place // a second country the user visits, nil for most
	privileged            bool
	helpdesk              bool
}

type group struct{ id, name string }

// Tenant is the synthetic directory: users in domains and groups, help desk
// admins, privileged accounts, each with a stable home address.
type Tenant struct {
	ID       string
	users    []*person // every account, the admins included
	plain    []*person // accounts that may reset in benign traffic
	priv     []*person
	helpdesk []*person
	groups   []group
	domains  []string
	byIP     map[string]place
	nextIP   map[string]int // next host number per prefix
}

// privilegedRoles are directory roles of the privileged list of the rules.
var privilegedRoles = []string{"Global Administrator", "Privileged Role Administrator", "Security Administrator",
	"Exchange Administrator", "SharePoint Administrator", "User Administrator", "Authentication Administrator",
	"Application Administrator", "Conditional Access Administrator", "Billing Administrator"}

// harmlessRoles are roles outside that list that some users hold.
var harmlessRoles = []string{"Directory Readers", "Reports Reader", "Message Center Reader", "Usage Summary Reports Reader"}

var departments = []string{"Sales", "Marketing", "Engineering", "Finance", "Human Resources", "Legal", "Support",
	"Operations", "Procurement", "Research", "IT", "Facilities", "Customer Success", "Product", "Design", "Logistics"}

var extraGroups = []string{"VPN Users", "Remote Workers", "Project Atlas", "Project Borealis", "Mobile Devices",
	"Contractors", "Office Berlin", "Office London"}

var firstNames = []string{"ada", "bo", "carla", "dev", "elena", "farid", "greta", "hiro", "ines", "jonas", "kemal", "lena",
	"mateo", "nadia", "omar", "priya", "quinn", "rosa", "sven", "tara", "umar", "vera", "wei", "ximena", "yusuf", "zoe"}

var lastNames = []string{"lovelace", "lindqvist", "moreau", "patel", "novak", "tanaka", "okafor", "schmidt", "garcia",
	"kowalski", "nguyen", "rossi", "haddad", "ivanova", "smith", "jensen", "silva", "kim", "dubois", "murphy"}

// NewTenant builds a directory of n accounts (at least 200).
func NewTenant(rng *rand.Rand, n int) (*Tenant, error) {
	if n < 200 {
		return nil, fmt.Errorf("scenario: a tenant needs at least 200 users, not %d", n)
	}
	t := &Tenant{ID: "50a74cff-026f-4c84-aa8f-f5f8d837115f", byIP: map[string]place{}, nextIP: map[string]int{},
		domains: []string{"contoso.example", "fabrikam.example", "northwind.example"}}
	for _, name := range append(slices.Clone(departments), extraGroups...) {
		t.groups = append(t.groups, group{id: uuid(rng), name: name})
	}
	seen := map[string]int{}
	for i := 0; i < n; i++ {
		p := &person{id: uuid(rng)}
		switch r := rng.IntN(100); {
		case r < 55:
			p.domain = t.domains[0]
		case r < 85:
			p.domain = t.domains[1]
		default:
			p.domain = t.domains[2]
		}
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		base := first + "." + last
		seen[base]++
		local := base
		if seen[base] > 1 {
			local += strconv.Itoa(seen[base])
		}
		p.upn = local + "@" + p.domain
		p.name = title(first) + " " + title(last)
		p.groups = append(p.groups, t.groups[rng.IntN(len(departments))])
		if rng.IntN(10) < 4 {
			g := t.groups[len(departments)+rng.IntN(len(extraGroups))]
			p.groups = append(p.groups, g)
		}
		if rng.IntN(40) == 0 {
			p.roles = []string{harmlessRoles[rng.IntN(len(harmlessRoles))]}
		}
		p.home = t.address(&homeNetworks[pick(rng, homeWeights)])
		if rng.IntN(20) == 0 {
			// Travels to another country now and then; the history holds
			// an earlier visit before any reset from there.
			for {
				nw := &homeNetworks[rng.IntN(len(homeNetworks))]
				if nw.country != p.home.net.country {
					tp := t.address(nw)
					p.travel = &tp
					break
				}
			}
		}
		t.users = append(t.users, p)
	}
	// The first accounts of the main domain become the privileged ones and
	// the help desk: they never reset in benign traffic.
	k := 0
	for _, p := range t.users {
		if p.domain != t.domains[0] || p.travel != nil {
			continue
		}
		switch {
		case k < 4:
			p.helpdesk, p.privileged = true, true
			p.roles = []string{"Helpdesk Administrator"}
			t.helpdesk = append(t.helpdesk, p)
		case k < 4+len(privilegedRoles):
			p.privileged = true
			p.roles = []string{privilegedRoles[k-4]}
			t.priv = append(t.priv, p)
		default:
			t.plain = append(t.plain, p)
		}
		k++
	}
	for _, p := range t.users {
		if p.domain != t.domains[0] || p.travel != nil {
			t.plain = append(t.plain, p)
		}
	}
	return t, nil
}

// address hands out a fresh address of network nw.
func (t *Tenant) address(nw *network) place {
	h := t.nextIP[nw.prefix]
	t.nextIP[nw.prefix] = h + 1
	ip := nw.prefix + "." + strconv.Itoa(h/250) + "." + strconv.Itoa(h%250+2)
	pl := place{ip: ip, net: nw}
	t.byIP[ip] = pl
	return pl
}

func pick(rng *rand.Rand, weights []int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	r := rng.IntN(sum)
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	return len(weights) - 1
}

func title(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func uuid(rng *rand.Rand) string { return gen.UUID(rng) }
