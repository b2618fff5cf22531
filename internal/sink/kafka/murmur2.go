package kafka

import (
	"sync/atomic"

	kgo "github.com/segmentio/kafka-go"
)

// murmur2 is the 32-bit MurmurHash2 variant of the Java client
// (org.apache.kafka.common.utils.Utils.murmur2): seed 0x9747b28c,
// little-endian 4-byte blocks.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := n &^ 3
	switch n & 3 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Partition returns the partition the Java client's default partitioner
// picks for a non-null key: toPositive(murmur2(key)) % numPartitions.
func Partition(key []byte, numPartitions int) int {
	return int((murmur2(key) & 0x7fffffff) % uint32(numPartitions))
}

// javaPartitioner places keyed messages where every Java-compatible client
// would, and spreads null-keyed messages round-robin.
type javaPartitioner struct{ next atomic.Uint32 }

// Balance implements kafka-go's Balancer. kafka-go passes the partition ids
// 0..n-1 in order, so an index is an id.
func (p *javaPartitioner) Balance(msg kgo.Message, partitions ...int) int {
	if msg.Key == nil {
		return partitions[int(p.next.Add(1)-1)%len(partitions)]
	}
	return partitions[Partition(msg.Key, len(partitions))]
}
