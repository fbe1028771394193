import Foundation
import RVCNative

// OpenBLAS's kernel, chosen again when OpenBLAS fell back to a generic one (see `BLASKernel`), and the
// `blas-kernel` command that reports it.
//
// Why re-execute: OpenBLAS reads OPENBLAS_CORETYPE once, in a constructor that runs when the library
// loads. The library is linked, so that constructor has run before main and setting the variable now
// changes nothing. Loading OpenBLAS with dlopen after setting it would work only if every call site
// (cblas_sgemm, openblas_set_num_threads, ...) went through function pointers. So the process sets the
// variable and replaces itself with the same binary and arguments, once: `reexecutedFromVariable` holds
// the core name OpenBLAS first reported, which also stops a second re-execution whatever happens.

let blasKernelHelp = """
RVCNativeMac blas-kernel: the OpenBLAS kernel this binary's matrix products run on.

Usage:
  RVCNativeMac blas-kernel [--verbose]

Options:
  --verbose         Say why that kernel, e.g. "OpenBLAS kernel: SkylakeX (forced: OpenBLAS 0.3.21
                    reported Prescott on an AVX-512 CPU)".
\(helpOption)

Prints the kernel's name alone (e.g. SkylakeX), as every other command runs with it. When OpenBLAS
falls back to a generic kernel below what the CPU runs (an unrecognised CPU), every command sets
OPENBLAS_CORETYPE to the CPU's kernel and restarts itself once; an OPENBLAS_CORETYPE you set is kept.

"""

/// Set, to the core name OpenBLAS first reported, in the re-executed process.
private let reexecutedFromVariable = "RVC_BLAS_KERNEL_REEXECUTED_FROM"

/// Test seam: the core name to take OpenBLAS as reporting (e.g. Prescott), so the re-execution can be
/// exercised on a CPU OpenBLAS recognises.
private let assumedCoreNameVariable = "RVC_BLAS_ASSUME_CORENAME"

/// What decides the kernel: the core name OpenBLAS reported (or the seam's), the CPU's flags, the environment.
private struct KernelFacts {
    let reportedCoreName: String
    let cpuFlags: Set<String>
    let environment: [String: String]

    init() {
        environment = ProcessInfo.processInfo.environment
        reportedCoreName = environment[assumedCoreNameVariable] ?? BLASKernel.coreName
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        cpuFlags = BLASKernel.cpuFlags(cpuinfo: cpuinfo)
    }

    var coreTypeToForce: String? {
        BLASKernel.coreTypeToForce(reportedCoreName: reportedCoreName, cpuFlags: cpuFlags, environment: environment)
    }

    var cpuDescription: String { "an \(BLASKernel.instructionTier(cpuFlags: cpuFlags).name) CPU" }
}

/// At start-up, before anything is printed: when OpenBLAS fell back to a generic kernel, re-execute this
/// binary once with OPENBLAS_CORETYPE set to the CPU's kernel. Returns only when no re-execution is
/// needed or it failed (then with one warning line on stderr, and the generic kernel).
func reexecuteWithCPUsBLASKernelIfNeeded() {
    #if os(Linux)
    let facts = KernelFacts()
    guard facts.environment[reexecutedFromVariable] == nil, let coreType = facts.coreTypeToForce else { return }
    guard BLASKernel.canSwitchKernel else {
        warnGenericKernel(facts, coreType: coreType, reason: "this OpenBLAS is built without DYNAMIC_ARCH; install one built with it")
        return
    }
    setenv("OPENBLAS_CORETYPE", coreType, 1)
    setenv(reexecutedFromVariable, facts.reportedCoreName, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    let reason = String(cString: strerror(errno))
    unsetenv("OPENBLAS_CORETYPE")
    unsetenv(reexecutedFromVariable)
    warnGenericKernel(facts, coreType: coreType, reason: "re-executing: \(reason); set OPENBLAS_CORETYPE=\(coreType) yourself")
    #endif
}

private func warnGenericKernel(_ facts: KernelFacts, coreType: String, reason: String) {
    FileHandle.standardError.write(Data((
        "warning: OpenBLAS chose its generic \(facts.reportedCoreName) kernel on \(facts.cpuDescription) and "
        + "could not switch to \(coreType), so matrix products run slower (\(reason)).\n").utf8))
}

/// "OpenBLAS kernel: NAME (why)" for `blas-kernel --verbose`.
func blasKernelDescription() -> String {
    let inUse = BLASKernel.coreName
    #if os(Linux)
    let facts = KernelFacts()
    let library = BLASKernel.libraryVersion
    let why: String
    if let original = facts.environment[reexecutedFromVariable] {
        why = "forced: \(library) reported \(original) on \(facts.cpuDescription)"
    } else if let userSet = facts.environment["OPENBLAS_CORETYPE"], !userSet.isEmpty {
        why = "OPENBLAS_CORETYPE=\(userSet) set by the user"
    } else if let coreType = facts.coreTypeToForce {
        why = "generic fallback of \(library) on \(facts.cpuDescription); switching to \(coreType) failed"
    } else {
        why = "\(library)'s own choice for this CPU"
    }
    return "OpenBLAS kernel: \(inUse) (\(why))"
    #else
    return "BLAS: \(inUse)"
    #endif
}

func blasKernelCommand(_ arguments: ArraySlice<String>) throws {
    let options = try ParsedOptions(arguments, valueOptions: [], flagOptions: ["--verbose"])
    print(options.flags.contains("--verbose") ? blasKernelDescription() : BLASKernel.coreName)
}
