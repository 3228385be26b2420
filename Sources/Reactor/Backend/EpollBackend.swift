#if os(Linux)
import CReactor
import Glibc
import SystemPackage

/// Readiness backend over `epoll(7)`: edge-triggered, half-closes reported through
/// `EPOLLRDHUP`, woken through an `eventfd(2)`.
///
/// Every descriptor is registered once for both directions with `EPOLLET`, so the
/// kernel reports each change once and nothing has to be re-armed after a wait.
final class EpollBackend: ReactorBackend, @unchecked Sendable {
    // `@unchecked Sendable`: the two event buffers are touched only by `wait`, on the
    // loop thread; the wake-up writer is locked; everything else is an immutable
    // descriptor.
    private let epollFD: CInt
    private let wakeUp: WakeUpWriter
    /// Loop thread only: the kernel's packed events, then the unpacked copy.
    private let capacity: Int
    private let scratch: UnsafeMutableRawPointer
    private let unpacked: UnsafeMutablePointer<creactor_event>

    init(eventsPerWait capacity: Int = 1024) throws(Errno) {
        let epollFD = try valueOrErrno { creactor_epoll_create() }
        let wakeFD: CInt
        do {
            wakeFD = try valueOrErrno { creactor_eventfd() }
        } catch {
            closeDescriptor(epollFD)
            throw error
        }
        // The wake-up eventfd is never read: with EPOLLET every write is a new edge,
        // and the counter cannot realistically reach its 2^64 - 2 limit.
        let events = CREACTOR_EPOLLIN | CREACTOR_EPOLLET
        do {
            _ = try valueOrErrno {
                creactor_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, events, Token.wakeUp.rawValue)
            }
        } catch {
            closeDescriptor(wakeFD)
            closeDescriptor(epollFD)
            throw error
        }
        self.epollFD = epollFD
        wakeUp = WakeUpWriter(wakeFD)
        self.capacity = capacity
        scratch = .allocate(byteCount: capacity * creactor_epoll_event_size(), alignment: 16)
        unpacked = .allocate(capacity: capacity)
    }

    deinit {
        scratch.deallocate()
        unpacked.deallocate()
    }

    private static let interest =
        CREACTOR_EPOLLIN | CREACTOR_EPOLLOUT
        | CREACTOR_EPOLLRDHUP | CREACTOR_EPOLLET

    func register(_ fd: CInt, token: Token) throws(Errno) {
        _ = try valueOrErrno {
            creactor_epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, Self.interest, token.rawValue)
        }
    }

    func deregister(_ fd: CInt, token: Token) throws(Errno) {
        _ = try valueOrErrno { creactor_epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, 0, 0) }
    }

    func arm(_ fd: CInt, token: Token, interest: Readiness) {}

    func wait(into events: inout [BackendEvent], timeout: Duration?) throws(Errno) {
        let milliseconds = Duration.milliseconds(roundingUp: timeout)
        let count = try valueOrErrno {
            creactor_epoll_wait(epollFD, scratch, unpacked, CInt(capacity), milliseconds)
        }
        for i in 0..<Int(count) {
            let event = unpacked[i]
            let token = Token(rawValue: event.token)
            if token == .wakeUp { continue }
            events.append(BackendEvent(token: token, readiness: Readiness(events: event.events)))
        }
    }

    func wake() {
        wakeUp.signal(UInt64(1))
    }

    func close() {
        wakeUp.close()
        closeDescriptor(epollFD)
    }

    var descriptors: [CInt] { [epollFD, wakeUp.descriptor] }

    var kind: BackendKind { .epoll }
}

extension Readiness {
    /// The readiness in an `epoll` event mask; `poll` masks use the same bits.
    init(events: UInt32) {
        self = []
        if events & CREACTOR_EPOLLIN != 0 { insert(.readable) }
        if events & CREACTOR_EPOLLOUT != 0 { insert(.writable) }
        if events & CREACTOR_EPOLLRDHUP != 0 { insert(.readClosed) }
        if events & CREACTOR_EPOLLHUP != 0 { formUnion([.readClosed, .writeClosed]) }
        if events & CREACTOR_EPOLLERR != 0 { insert(.error) }
    }
}
#endif
