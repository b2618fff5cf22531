package sspr

import "encoding/binary"

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
