/// Where a stage runner's stages read their inputs: chained, what earlier stages computed in this run;
/// teacher-forced, the golden set's tensor of that name (in the runner's native layout), so each stage is
/// measured on exactly the inputs the reference gave it. (Used by `RMVPEStageRunner`; `StageRunner` has the
/// same logic inline.)
struct StageInputs {
    let mode: StageRunner.Mode
    let golden: GoldenSet?
    /// The layout the runner computes a tensor in (e.g. `RMVPETensors.nativeLayout`).
    let nativeLayout: (String) -> String?
    private var produced: [String: Tensor] = [:]

    init(mode: StageRunner.Mode, golden: GoldenSet?, nativeLayout: @escaping (String) -> String?) {
        self.mode = mode
        self.golden = golden
        self.nativeLayout = nativeLayout
    }

    /// Keeps a stage's output for the stages after it (chained runs).
    mutating func keep(_ name: String, _ tensor: Tensor) {
        produced[name] = tensor
    }

    func tensor(_ name: String) throws -> Tensor {
        if mode == .teacherForced {
            guard let golden else { throw RVCError.usage("Teacher-forced runs need a golden set with intermediates.") }
            guard let layout = nativeLayout(name) else { throw RVCError.goldenTensorMissing(name: name) }
            return try golden.tensor(name, layout: layout)
        }
        guard let tensor = produced[name] else { throw RVCError.goldenTensorMissing(name: name) }
        return tensor
    }
}
