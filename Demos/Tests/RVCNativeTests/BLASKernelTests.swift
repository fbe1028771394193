import Foundation
import Testing
@testable import RVCNative

/// CPU flag sets as /proc/cpuinfo lists them (the parts that matter).
private enum CPUFlags {
    static let sse3: Set<String> = ["fpu", "sse", "sse2", "pni", "ssse3", "sse4_1", "sse4_2"]
    static let avx = sse3.union(["avx"])
    static let avx2 = avx.union(["avx2", "fma"])
    static let avx512 = avx2.union(["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"])
}

/// The flags of the CPU running the tests.
private let hostCPUFlags: Set<String> =
    BLASKernel.cpuFlags(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")

private let hostHasAVX512 = BLASKernel.instructionTier(cpuFlags: hostCPUFlags) == .avx512

@Suite struct BLASKernelDecisionTests {
    private func forced(_ reported: String, _ flags: Set<String>, _ environment: [String: String] = [:]) -> String? {
        BLASKernel.coreTypeToForce(reportedCoreName: reported, cpuFlags: flags, environment: environment)
    }

    @Test func genericFallbackOnAnAVX512CPUForcesSkylakeX() {
        for reported in ["Prescott", "Katmai", "Coppermine", "Northwood", "Core2", "Penryn", "Dunnington", "Nehalem",
                         "Sandybridge", "Unknown", "generic", "GENERIC_x86_64"] {
            #expect(forced(reported, CPUFlags.avx512) == "SkylakeX", "\(reported)")
        }
    }

    @Test func genericFallbackOnAnAVX2CPUForcesHaswell() {
        for reported in ["Prescott", "Nehalem", "Sandybridge", "generic"] {
            #expect(forced(reported, CPUFlags.avx2) == "Haswell", "\(reported)")
        }
    }

    @Test func genericFallbackOnAnAVXCPUForcesSandybridge() {
        #expect(forced("Prescott", CPUFlags.avx) == "Sandybridge")
    }

    /// OpenBLAS 0.3.21 picks SkylakeX or Cooperlake for every AVX-512 CPU it recognises, so Haswell (or
    /// Zen) on one is a fallback too.
    @Test func anAVX2KernelOnAnAVX512CPUForcesSkylakeX() {
        #expect(forced("Haswell", CPUFlags.avx512) == "SkylakeX")
        #expect(forced("Zen", CPUFlags.avx512) == "SkylakeX")
    }

    @Test func aKernelOfTheCPUsTierIsKept() {
        #expect(forced("Cooperlake", CPUFlags.avx512) == nil)
        #expect(forced("SkylakeX", CPUFlags.avx512) == nil)
        #expect(forced("SapphireRapids", CPUFlags.avx512) == nil)
        #expect(forced("Haswell", CPUFlags.avx2) == nil)
        #expect(forced("Zen", CPUFlags.avx2) == nil)
        #expect(forced("Excavator", CPUFlags.avx2) == nil)
    }

    @Test func aUserSetCoreTypeAlwaysWins() {
        #expect(forced("Prescott", CPUFlags.avx512, ["OPENBLAS_CORETYPE": "Prescott"]) == nil)
        #expect(forced("Prescott", CPUFlags.avx512, ["OPENBLAS_CORETYPE": "Haswell"]) == nil)
    }

    @Test func anEmptyCoreTypeCountsAsUnset() {
        #expect(forced("Prescott", CPUFlags.avx512, ["OPENBLAS_CORETYPE": ""]) == "SkylakeX")
    }

    @Test func aCPUWithoutAVXKeepsAnyKernel() {
        #expect(forced("Prescott", CPUFlags.sse3) == nil)
        #expect(forced("Nehalem", CPUFlags.sse3) == nil)
        #expect(forced("Prescott", []) == nil)
    }

    @Test func anUnknownKernelNameIsKept() {
        #expect(forced("NeoverseN1", CPUFlags.avx512) == nil)
        #expect(forced("Zen5", CPUFlags.avx512) == nil)
    }

    @Test func coreNamesCompareWithoutCase() {
        #expect(forced("PRESCOTT", CPUFlags.avx512) == "SkylakeX")
        #expect(forced("prescott", CPUFlags.avx2) == "Haswell")
    }
}

@Suite struct CPUFlagsTests {
    @Test func readsTheFirstFlagsLine() {
        let cpuinfo = """
        processor\t: 0
        model name\t: Intel(R) Xeon(R) Platinum
        flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw
        vmx flags\t: vnmi preemption_timer
        bugs\t\t: spectre_v1

        processor\t: 1
        flags\t\t: fpu sse2
        """
        #expect(BLASKernel.cpuFlags(cpuinfo: cpuinfo) == ["fpu", "sse2", "avx", "avx2", "fma", "avx512f", "avx512bw"])
    }

    @Test func isEmptyWithoutAFlagsLine() {
        #expect(BLASKernel.cpuFlags(cpuinfo: "processor\t: 0\nFeatures\t: fp asimd evtstrm\n").isEmpty)
        #expect(BLASKernel.cpuFlags(cpuinfo: "").isEmpty)
    }

    @Test func tiersNeedEverySubsetTheKernelsUse() {
        #expect(BLASKernel.instructionTier(cpuFlags: CPUFlags.avx512) == .avx512)
        // Knights Landing: AVX-512 F without BW, DQ or VL.
        #expect(BLASKernel.instructionTier(cpuFlags: CPUFlags.avx2.union(["avx512f", "avx512cd"])) == .avx2)
        #expect(BLASKernel.instructionTier(cpuFlags: CPUFlags.avx.union(["avx2"])) == .avx)
        #expect(BLASKernel.instructionTier(cpuFlags: CPUFlags.sse3) == .baseline)
    }
}

/// The built command line, run as a process: `swift build` builds it before `swift test`.
@Suite struct RVCNativeMacBLASKernelTests {
    /// RVCNativeMac beside the test bundle (the same build's products), else in Demos/.build/debug.
    private static func binary() -> URL? {
        let candidates = [
            Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent("RVCNativeMac"),
            Repository.root.appendingPathComponent("Demos/.build/debug/RVCNativeMac"),
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// The binary's `blas-kernel` output, run with `environment` over this process's (OPENBLAS_CORETYPE
    /// and the re-execution guard removed).
    private func reportedKernel(_ arguments: [String] = [], environment: [String: String] = [:]) throws -> String? {
        guard let binary = Self.binary() else {
            Issue.record("RVCNativeMac is not built; run `swift build` before `swift test`.")
            return nil
        }
        var base = ProcessInfo.processInfo.environment
        base["OPENBLAS_CORETYPE"] = nil
        base["RVC_BLAS_KERNEL_REEXECUTED_FROM"] = nil
        base["RVC_BLAS_ASSUME_CORENAME"] = nil
        let process = Process()
        process.executableURL = binary
        process.arguments = ["blas-kernel"] + arguments
        process.environment = base.merging(environment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.enabled(if: hostHasAVX512, "needs a CPU with AVX-512 (F, BW, DQ, VL)"))
    func aGenericFallbackIsReplacedBySkylakeXAfterReexecution() throws {
        let seam = ["RVC_BLAS_ASSUME_CORENAME": "Prescott"]
        #expect(try reportedKernel(environment: seam) == "SkylakeX")
        let line = try reportedKernel(["--verbose"], environment: seam)
        #expect(line?.hasPrefix("OpenBLAS kernel: SkylakeX (forced: OpenBLAS") == true, "\(line ?? "")")
        #expect(line?.contains("reported Prescott on an AVX-512 CPU") == true, "\(line ?? "")")
    }

    @Test(.enabled(if: hostHasAVX512, "needs a CPU with AVX-512 (F, BW, DQ, VL)"))
    func theKernelInUseIsNotGeneric() throws {
        guard let kernel = try reportedKernel() else { return }
        #expect(BLASKernel.instructionTier(ofKernel: kernel) == .avx512, "OpenBLAS runs \(kernel)")
    }

    @Test(.enabled(if: hostHasAVX512, "needs a CPU with AVX-512 (F, BW, DQ, VL)"))
    func aUserSetCoreTypeIsKept() throws {
        let environment = ["OPENBLAS_CORETYPE": "Haswell", "RVC_BLAS_ASSUME_CORENAME": "Prescott"]
        #expect(try reportedKernel(environment: environment) == "Haswell")
    }
}
