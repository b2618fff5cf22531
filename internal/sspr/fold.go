package sspr

import (
	"encoding/binary"
	"strings"
)

// foldBytes writes foldByte of each byte of src to dst (which may alias
// src), eight bytes at a time: this runs over every record of the stream.
func foldBytes(dst, src []byte) {
	const mask = 0x2020202020202020
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])|mask)
	}
	for ; i < len(src); i++ {
		dst[i] = foldByte(src[i])
	}
}

// rarity ranks folded bytes from rare to common in audit JSON, where keys
// repeat in every record and GUIDs make hex digits and a–f very common.
const rarity = "(){}qjzxwk!#$%&*+;<=>?@^`~|vhgmpbyufwlcnrtsoiade0123456789-_.,:/\\\" "

// rank is the position of c in rarity (unknown bytes count as rare).
func rank(c byte) int {
	if i := strings.IndexByte(rarity, c); i >= 0 {
		return i
	}
	return 0
}
