/// Inner product of two rows laid out as `VectorSet` stores them: `blocks` runs of 8 floats
/// (the dimension padded with zeros to a multiple of 8), each row 16-byte aligned.
///
/// Four independent `SIMD8<Float>` accumulators hide the add latency. The products are written
/// `acc += a * b` on purpose: the baseline x86-64 target has no FMA, so `addingProduct` would
/// become a call into libm per lane; a separate multiply and add stay vector instructions.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, blocks: Int) -> Float {
    let a = UnsafeRawPointer(a)
    let b = UnsafeRawPointer(b)
    let width = MemoryLayout<SIMD8<Float>>.stride
    var acc0 = SIMD8<Float>()
    var acc1 = SIMD8<Float>()
    var acc2 = SIMD8<Float>()
    var acc3 = SIMD8<Float>()
    var offset = 0
    var remaining = blocks
    while remaining >= 4 {
        acc0 += a.load(fromByteOffset: offset, as: SIMD8<Float>.self) * b.load(fromByteOffset: offset, as: SIMD8<Float>.self)
        acc1 += a.load(fromByteOffset: offset &+ width, as: SIMD8<Float>.self)
            * b.load(fromByteOffset: offset &+ width, as: SIMD8<Float>.self)
        acc2 += a.load(fromByteOffset: offset &+ 2 &* width, as: SIMD8<Float>.self)
            * b.load(fromByteOffset: offset &+ 2 &* width, as: SIMD8<Float>.self)
        acc3 += a.load(fromByteOffset: offset &+ 3 &* width, as: SIMD8<Float>.self)
            * b.load(fromByteOffset: offset &+ 3 &* width, as: SIMD8<Float>.self)
        offset &+= 4 &* width
        remaining &-= 4
    }
    while remaining > 0 {
        acc0 += a.load(fromByteOffset: offset, as: SIMD8<Float>.self) * b.load(fromByteOffset: offset, as: SIMD8<Float>.self)
        offset &+= width
        remaining &-= 1
    }
    let sum8 = (acc0 + acc1) + (acc2 + acc3)
    let sum4 = sum8.lowHalf + sum8.highHalf
    let sum2 = sum4.lowHalf + sum4.highHalf
    return sum2[0] + sum2[1]
}
