/// Where a stage runner's stages read their inputs: chained, what earlier stages computed in this run;
/// teacher-forced, the golden set's tensor of that name (in the runner's native layout), so each stage is
/// measured on exactly the inputs the reference gave it. Used by `StageRunner` and `RMVPEStageRunner`.
struct StageInputs {
    let mode: StageRunner.Mode
    let golden: GoldenSet?
    /// The layout the runner computes a tensor in (e.g. `RMVPETensors.nativeLayout`).
    let nativeLayout: (String) -> String?
    /// The shape a golden tensor must have, when the runner knows it (`VoiceTensors.nativeShape`): a golden
    /// set recorded for another voice is reported as such instead of failing inside a stage.
    let nativeShape: ((String) -> [Int]?)?
    private var produced: [String: Tensor] = [:]

    init(mode: StageRunner.Mode, golden: GoldenSet?, nativeLayout: @escaping (String) -> String?,
         nativeShape: ((String) -> [Int]?)? = nil) {
        self.mode = mode
        self.golden = golden
        self.nativeLayout = nativeLayout
        self.nativeShape = nativeShape
    }

    /// Keeps a stage's output for the stages after it (chained runs).
    mutating func keep(_ name: String, _ tensor: Tensor) {
        produced[name] = tensor
    }

    func tensor(_ name: String) throws -> Tensor {
        if mode == .teacherForced {
            guard let golden else { throw RVCError.usage("Teacher-forced runs need a golden set with intermediates.") }
            guard let layout = nativeLayout(name) else { throw RVCError.goldenTensorMissing(name: name) }
            guard let nativeShape else { return try golden.tensor(name, layout: layout) }
            guard let shape = nativeShape(name) else { throw RVCError.goldenTensorMissing(name: name) }
            let tensor = try golden.tensor(name, layout: layout)
            guard tensor.shape == shape else {
                throw RVCError.goldenTensorShape(name: name, expected: shape, actual: tensor.shape)
            }
            return tensor
        }
        guard let tensor = produced[name] else { throw RVCError.goldenTensorMissing(name: name) }
        return tensor
    }
}
