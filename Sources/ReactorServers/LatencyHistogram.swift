/// Counts of durations in log-linear buckets, for percentiles of round-trip latencies.
///
/// ```swift
/// var histogram = LatencyHistogram()
/// histogram.record(nanoseconds: 12_400)
/// print(histogram.percentile(0.99))
/// ```
///
/// The buckets are allocated once, in `init`: recording never allocates, so a hot loop
/// may record every message. Values are nanoseconds, bucketed with 7 bits of precision:
///
/// | values (ns)              | bucket width | buckets |
/// |--------------------------|-------------:|--------:|
/// | 0 ..< 128                | 1            | 128     |
/// | 128 ..< 256              | 2            | 64      |
/// | 256 ..< 512              | 4            | 64      |
/// | 2^(k+6) ..< 2^(k+7)      | 2^k          | 64      |
/// | 2^39 ..< 2^40 (k = 33)   | 2^33         | 64      |
///
/// So a percentile is off by less than 1/64 (1.6 %) of itself. Values of 2^40 ns (about
/// 18 minutes) and more count in the last bucket.
///
/// A histogram belongs to one task at a time; ``merge(_:)`` combines those of several.
public struct LatencyHistogram: Sendable {
    /// Values below this have a bucket each.
    private static let linearLimit: UInt64 = 128
    /// Buckets per power of two above ``linearLimit``.
    private static let bucketsPerOctave = 64
    /// The highest octave kept apart; values above it share its last bucket.
    private static let topOctave = 33
    private static let bucketCount = Int(linearLimit) + topOctave * bucketsPerOctave

    private var counts: [UInt64]

    /// How many values were recorded.
    public private(set) var count = 0
    /// The smallest recorded value, in nanoseconds; 0 while nothing is recorded.
    public private(set) var minimum: UInt64 = 0
    /// The largest recorded value, in nanoseconds; 0 while nothing is recorded.
    public private(set) var maximum: UInt64 = 0

    /// An empty histogram, with every bucket allocated.
    public init() {
        counts = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    /// Counts one value. Never allocates.
    ///
    /// - Parameter nanoseconds: the duration to count.
    public mutating func record(nanoseconds: UInt64) {
        counts[Self.bucket(of: nanoseconds)] += 1
        minimum = count == 0 ? nanoseconds : min(minimum, nanoseconds)
        maximum = max(maximum, nanoseconds)
        count += 1
    }

    /// Adds every value `other` recorded to this histogram.
    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for index in counts.indices { counts[index] += other.counts[index] }
        minimum = count == 0 ? other.minimum : min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        count += other.count
    }

    /// The value below which `fraction` of the recorded values fall: `0.5` is the median,
    /// `0.999` the 99.9th percentile.
    ///
    /// The answer is the middle of the bucket holding that rank, clamped to the recorded
    /// ``minimum`` and ``maximum``; so percentiles never decrease as `fraction` grows.
    ///
    /// - Parameter fraction: from 0 to 1.
    /// - Returns: the percentile; zero if nothing was recorded.
    public func percentile(_ fraction: Double) -> Duration {
        precondition((0...1).contains(fraction), "a percentile is a fraction from 0 to 1")
        guard count > 0 else { return .zero }
        let rank = max(1, UInt64((fraction * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() {
            seen += bucketCount
            if seen >= rank {
                let value = min(max(Self.middle(ofBucket: index), minimum), maximum)
                return .nanoseconds(Int64(clamping: value))
            }
        }
        return .nanoseconds(Int64(clamping: maximum))
    }

    /// The bucket that counts `value`.
    static func bucket(of value: UInt64) -> Int {
        if value < linearLimit { return Int(value) }
        // With the highest set bit at position e (at least 7), the octave's buckets are
        // 2^(e-6) wide, and the 6 bits below the highest pick one of its 64.
        let highestBit = UInt64.bitWidth - 1 - value.leadingZeroBitCount
        let octave = highestBit - 6
        guard octave <= topOctave else { return bucketCount - 1 }
        let withinOctave = Int(value >> UInt64(octave)) - bucketsPerOctave
        return Int(linearLimit) + (octave - 1) * bucketsPerOctave + withinOctave
    }

    /// The smallest value that `bucket` counts.
    static func lowestValue(ofBucket bucket: Int) -> UInt64 {
        if bucket < Int(linearLimit) { return UInt64(bucket) }
        let octave = (bucket - Int(linearLimit)) / bucketsPerOctave + 1
        let withinOctave = (bucket - Int(linearLimit)) % bucketsPerOctave
        return UInt64(bucketsPerOctave + withinOctave) << UInt64(octave)
    }

    /// The middle of the values that `bucket` counts.
    static func middle(ofBucket bucket: Int) -> UInt64 {
        if bucket < Int(linearLimit) { return UInt64(bucket) }
        let octave = (bucket - Int(linearLimit)) / bucketsPerOctave + 1
        return lowestValue(ofBucket: bucket) + (1 << UInt64(octave)) / 2
    }
}
