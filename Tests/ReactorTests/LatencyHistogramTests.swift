import Testing

@testable import ReactorServers

extension ReactorTests {
    @Suite struct LatencyHistogramTests {
        @Test("every value falls in a bucket that starts at most 1/64 of it below it")
        func bucketBounds() {
            var previous = -1
            var value: UInt64 = 0
            while value < 1 << 41 {
                let bucket = LatencyHistogram.bucket(of: value)
                #expect(bucket >= previous, "buckets grow with values")
                previous = bucket
                let low = LatencyHistogram.lowestValue(ofBucket: bucket)
                if value < 1 << 40 {
                    #expect(low <= value)
                    #expect(value < LatencyHistogram.lowestValue(ofBucket: bucket + 1) || bucket == LatencyHistogram.bucket(of: UInt64.max))
                    #expect(Double(value - low) <= Double(value) / 64)
                }
                value = value < 1_000 ? value + 1 : value + value / 97
            }
            #expect(LatencyHistogram.bucket(of: UInt64.max) == LatencyHistogram.bucket(of: 1 << 45))
        }

        @Test("percentiles of 1...10,000 ns are within 1/64 of the exact ranks")
        func percentiles() {
            var histogram = LatencyHistogram()
            for value in 1...10_000 as ClosedRange<UInt64> { histogram.record(nanoseconds: value) }
            #expect(histogram.count == 10_000)
            #expect(histogram.minimum == 1)
            #expect(histogram.maximum == 10_000)
            for (fraction, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
                let nanoseconds = Double(histogram.percentile(fraction).components.attoseconds) / 1e9
                #expect(abs(nanoseconds - exact) <= exact / 64, "p\(fraction * 100): \(nanoseconds)")
            }
            #expect(histogram.percentile(0) == .nanoseconds(1))
            #expect(histogram.percentile(1) == .nanoseconds(10_000))
        }

        @Test("percentiles never decrease, and stay within the recorded range")
        func monotonic() {
            var histogram = LatencyHistogram()
            for value: UInt64 in [5, 1_000_000, 17, 123_456_789, 300, 300, 42_000] { histogram.record(nanoseconds: value) }
            let percentiles = (0...1_000).map { histogram.percentile(Double($0) / 1_000) }
            #expect(zip(percentiles, percentiles.dropFirst()).allSatisfy { $0 <= $1 })
            #expect(percentiles.allSatisfy { $0 >= .nanoseconds(5) && $0 <= .nanoseconds(123_456_789) })
        }

        @Test("merging equals recording everything in one histogram; empty ones report zero")
        func merge() {
            var all = LatencyHistogram()
            var left = LatencyHistogram()
            var right = LatencyHistogram()
            for value in stride(from: UInt64(3), to: 2_000_000, by: 977) {
                all.record(nanoseconds: value)
                if value % 2 == 0 { left.record(nanoseconds: value) } else { right.record(nanoseconds: value) }
            }
            var merged = LatencyHistogram()
            merged.merge(left)
            merged.merge(LatencyHistogram())
            merged.merge(right)
            #expect(merged.count == all.count)
            #expect(merged.minimum == all.minimum)
            #expect(merged.maximum == all.maximum)
            for fraction in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
                #expect(merged.percentile(fraction) == all.percentile(fraction))
            }
            #expect(LatencyHistogram().percentile(0.5) == .zero)
        }
    }
}
