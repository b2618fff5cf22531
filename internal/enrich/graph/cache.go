package graph

import (
	"container/list"
	"sync"
	"time"
)

// Membership is what Graph says about one user: the groups they are a
// member of (directly or through other groups) and their directory roles,
// each list sorted and without duplicates. Found is false for a user Graph
// does not know.
type Membership struct {
	GroupIDs   []string
	GroupNames []string
	Roles      []string
	Found      bool
}

// cache keeps memberships for a time, bounded in size: least recently used
// first out. Entries are never changed once stored, so callers may share
// their slices for reading.
type cache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	m       Membership
	expires time.Time
}

func newCache(size int, ttl time.Duration) *cache {
	return &cache{size: max(1, size), ttl: ttl, order: list.New(), items: map[string]*list.Element{}}
}

// get returns the fresh entry for key.
func (c *cache) get(key string, now time.Time) (Membership, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return Membership{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return Membership{}, false
	}
	c.order.MoveToFront(el)
	return e.m, true
}

// put stores m for key, evicting the least recently used entries beyond
// the size.
func (c *cache) put(key string, m Membership, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = &cacheEntry{key: key, m: m, expires: now.Add(c.ttl)}
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, m: m, expires: now.Add(c.ttl)})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// len returns how many entries are held (expired ones included until they
// are looked up or pushed out).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
