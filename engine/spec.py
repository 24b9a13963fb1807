"""The training spec: a closed data schema for networks, losses, optimizers and training settings.

Parsed and validated once, here. The service reuses these models for its request bodies and its
OpenAPI schema. Every name is matched against a fixed registry of literals; nothing in a spec is
ever resolved to Python code (no getattr, no import): an unknown key or name is an error that
lists the valid choices.

Glossary: M_l is the width of layer l, M_0 the number of input features, K the maxout pieces.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from engine.errors import SpecError

__all__ = [
    "ACTIVATION_ALIASES",
    "ACTIVATION_NAMES",
    "HIDDEN_ACTIVATION_NAMES",
    "INITIALIZER_ALIASES",
    "INITIALIZER_NAMES",
    "OPTIMIZER_NAMES",
    "ActivationSpec",
    "AdaGradSpec",
    "AdamSpec",
    "CosineSchedule",
    "DenseLayer",
    "EarlyStoppingSpec",
    "ExponentialSchedule",
    "LayerSpec",
    "MAX_EPOCHS",
    "MaxoutLayer",
    "MomentumSpec",
    "NesterovSpec",
    "NetworkSpec",
    "OptimizerSpec",
    "RMSpropSpec",
    "SGDSpec",
    "ScheduleSpec",
    "StepSchedule",
    "TrainingSpec",
    "buffer_values_per_row",
    "check_against_data",
    "layer_shapes",
    "parameter_count",
    "resolve_loss",
]


MAX_EPOCHS = 1_000_000


class _Closed(BaseModel):
    """Unknown keys are errors that list the valid keys, floats must be finite, instances are
    immutable. (`extra="forbid"` alone would reject a typo without saying what was meant; it stays
    for the OpenAPI schema's additionalProperties: false.)"""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys_only(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Each unknown key is an error at its own place, reported with the known keys' errors
        (raising at the first unknown key hid every other mistake in the body)."""
        if not isinstance(data, dict) or all(key in cls.model_fields for key in data):
            return handler(data)
        valid = ", ".join(cls.model_fields)
        # Messages go through one "{msg}" placeholder: a key like "{valid}" stays as sent.
        errors = [InitErrorDetails(type=PydanticCustomError(
            "unknown_key", "{msg}", {"msg": f"unknown key {key!r}; valid keys: {valid}"}),
            loc=(key,), input=value) for key, value in data.items() if key not in cls.model_fields]
        try:
            handler({key: value for key, value in data.items() if key in cls.model_fields})
        except ValidationError as known:
            errors += [InitErrorDetails(type=PydanticCustomError(e["type"], "{msg}",
                                                                 {"msg": e["msg"]}),
                                        loc=e["loc"], input=e["input"]) for e in known.errors()]
        raise ValidationError.from_exception_data(cls.__name__, errors)


# --- activations -------------------------------------------------------------------------------


class Identity(_Closed):
    name: Literal["identity"] = "identity"


class Logistic(_Closed):
    name: Literal["logistic"] = "logistic"


class Tanh(_Closed):
    name: Literal["tanh"] = "tanh"


class HardLogistic(_Closed):
    name: Literal["hard_logistic"] = "hard_logistic"


class HardTanh(_Closed):
    name: Literal["hard_tanh"] = "hard_tanh"


class ReLU(_Closed):
    name: Literal["relu"] = "relu"


class LeakyReLU(_Closed):
    name: Literal["leaky_relu"] = "leaky_relu"
    gamma: float = Field(0.01, ge=0.0, le=1.0, description="Slope for z ≤ 0.")


class PReLU(_Closed):
    name: Literal["prelu"] = "prelu"
    gamma: float = Field(0.25, ge=0.0, le=1.0, description="Initial slope γᵢ for z ≤ 0 (learned).")


class Softplus(_Closed):
    name: Literal["softplus"] = "softplus"


class ELU(_Closed):
    name: Literal["elu"] = "elu"
    gamma: float = Field(1.0, gt=0.0, le=100.0, description="Scale of the negative part.")


class Swish(_Closed):
    name: Literal["swish"] = "swish"
    beta: float = Field(1.0, ge=0.0, le=100.0, description="x·σ(βx); initial value when learnable.")
    learnable: bool = Field(False, description="Learn one β per unit.")


class GELU(_Closed):
    name: Literal["gelu"] = "gelu"
    approximate: bool = Field(False, description="Use the tanh approximation instead of erf.")


class Softmax(_Closed):
    name: Literal["softmax"] = "softmax"


ACTIVATION_ALIASES: dict[str, dict[str, Any]] = {
    "sigmoid": {"name": "logistic"},
    "silu": {"name": "swish", "beta": 1.0, "learnable": False},
}

ActivationSpec = Annotated[
    Identity | Logistic | Tanh | HardLogistic | HardTanh | ReLU | LeakyReLU | PReLU | Softplus
    | ELU | Swish | GELU | Softmax,
    Field(discriminator="name"),
]
ACTIVATION_NAMES: tuple[str, ...] = (
    "identity", "logistic", "tanh", "hard_logistic", "hard_tanh", "relu", "leaky_relu", "prelu",
    "softplus", "elu", "swish", "gelu", "softmax",
)
HIDDEN_ACTIVATION_NAMES: tuple[str, ...] = tuple(n for n in ACTIVATION_NAMES if n != "softmax")


def _normalise_activation(value: Any) -> Any:
    """Accept "tanh" or {"name": "tanh", …}; map aliases to their canonical stored form."""
    if isinstance(value, str):
        value = {"name": value}
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        name = value["name"]
        if name in ACTIVATION_ALIASES:
            fixed = ACTIVATION_ALIASES[name]
            clashes = [k for k, v in value.items() if k != "name" and _differs(fixed.get(k, v), v)]
            if clashes:  # "silu" is swish with β = 1: a different β is a swish, not a silu
                raise ValueError(f"{name!r} fixes {', '.join(clashes)}; use {fixed['name']!r} "
                                 "to choose other values")
            value = {**fixed, **{k: v for k, v in value.items() if k != "name"}}
        elif name not in ACTIVATION_NAMES:
            valid = ", ".join([*ACTIVATION_NAMES, *ACTIVATION_ALIASES])
            raise ValueError(f"unknown activation {name!r}; valid names: {valid}")
    return value


def _differs(fixed: Any, given: Any) -> bool:
    """Whether `given` means another value than `fixed` once coerced as the field would be
    ("1.0" is 1.0, "false" is False); what cannot be coerced is left to the field to refuse."""
    try:
        return bool(TypeAdapter(type(fixed)).validate_python(given) != fixed)
    except ValidationError:
        return False


def _one_of(names: tuple[str, ...]) -> Any:
    """Literal[*names], for an OpenAPI input schema: what a client may send before the aliases
    are resolved (the names come from the registries above, not a second list)."""
    return Literal[names]  # subscripting with a tuple is Literal[names[0], names[1], …]


# What a client may send, for the OpenAPI schema: a name (aliases included) or an object.
ActivationInput = _one_of((*ACTIVATION_NAMES, *ACTIVATION_ALIASES)) | ActivationSpec


# --- layers ------------------------------------------------------------------------------------


class DenseLayer(_Closed):
    """z = W a + b, a = f(z). W has shape (units, fan_in)."""

    type: Literal["dense"] = "dense"
    units: int = Field(ge=1, le=1_000_000)
    activation: Annotated[
        ActivationSpec,
        BeforeValidator(_normalise_activation, json_schema_input_type=ActivationInput),
    ] = Field(default_factory=ReLU, description="A name (aliases: sigmoid, silu) or an object "
              "with a name and that activation's parameters.")


class MaxoutLayer(_Closed):
    """a_i = max_k (w_ik · a + b_ik): K linear pieces per unit; W is (units, pieces, fan_in)."""

    type: Literal["maxout"] = "maxout"
    units: int = Field(ge=1, le=1_000_000)
    pieces: int = Field(2, ge=2, le=64)


LayerSpec = Annotated[DenseLayer | MaxoutLayer, Field(discriminator="type")]

INITIALIZER_NAMES: tuple[str, ...] = (
    "auto", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "uniform", "normal", "zeros",
)
INITIALIZER_ALIASES: dict[str, str] = {
    "xavier": "xavier_uniform", "glorot": "xavier_uniform", "glorot_uniform": "xavier_uniform",
    "glorot_normal": "xavier_normal", "he": "he_normal", "kaiming": "he_normal",
    "lecun": "lecun_normal",
}
InitializerName = Literal[
    "auto", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "uniform", "normal", "zeros",
]
InitializerInput = _one_of((*INITIALIZER_NAMES, *INITIALIZER_ALIASES))


def _normalise_init(value: Any) -> Any:
    """Map an initializer alias to its canonical name; unknown names list the valid ones."""
    if isinstance(value, str):
        if value in INITIALIZER_ALIASES:
            return INITIALIZER_ALIASES[value]
        if value not in INITIALIZER_NAMES:
            valid = ", ".join([*INITIALIZER_NAMES, *INITIALIZER_ALIASES])
            raise ValueError(f"unknown init {value!r}; valid names: {valid}")
    return value


class NetworkSpec(_Closed):
    """Layers from the first hidden layer to the output layer; the input width comes from the data.

    `init: "auto"` uses He (normal) for ReLU-family and maxout layers, Xavier (uniform) otherwise.
    """

    layers: list[LayerSpec] = Field(min_length=1, max_length=1024)
    init: Annotated[
        InitializerName, BeforeValidator(_normalise_init, json_schema_input_type=InitializerInput)
    ] = Field("auto", description="Aliases: " + ", ".join(
        f"{alias} = {name}" for alias, name in INITIALIZER_ALIASES.items()) + ".")

    @model_validator(mode="before")
    @classmethod
    def _defaults_and_aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("layers"), list):
            # "type" may be omitted for dense layers, as in most specs people write by hand.
            layers = [
                {"type": "dense", **layer}
                if isinstance(layer, dict) and "type" not in layer
                else layer
                for layer in data["layers"]
            ]
            data = {**data, "layers": layers}
        return data

    @model_validator(mode="after")
    def _output_rules(self) -> NetworkSpec:
        for index, layer in enumerate(self.layers[:-1], start=1):
            if isinstance(layer, DenseLayer) and layer.activation.name == "softmax":
                raise ValueError(f"layer {index}: softmax is allowed on the output layer only")
        if isinstance(self.layers[-1], MaxoutLayer):
            raise ValueError("the output layer must be dense (maxout is a hidden layer)")
        return self

    @property
    def output(self) -> DenseLayer:
        last = self.layers[-1]
        assert isinstance(last, DenseLayer)
        return last


# --- optimizers and schedules ------------------------------------------------------------------


class StepSchedule(_Closed):
    """α_t = α₀ · gamma^⌊epoch / step_size⌋."""

    name: Literal["step"] = "step"
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0.0, le=1.0)


class ExponentialSchedule(_Closed):
    """α_t = α₀ · gamma^epoch."""

    name: Literal["exponential"] = "exponential"
    gamma: float = Field(0.95, gt=0.0, le=1.0)


class CosineSchedule(_Closed):
    """α_t = min_lr + ½(α₀ − min_lr)(1 + cos(π·epoch / epochs))."""

    name: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0.0)


ScheduleSpec = Annotated[
    StepSchedule | ExponentialSchedule | CosineSchedule, Field(discriminator="name")
]

LearningRate = Annotated[float, Field(gt=0.0, le=1e3)]


class SGDSpec(_Closed):
    """Algorithm 4.1: W ← W − α(∂L/∂W + λW); optional (Nesterov) momentum."""

    name: Literal["sgd"] = "sgd"
    learning_rate: LearningRate = 0.01
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    schedule: ScheduleSpec | None = None


class MomentumSpec(_Closed):
    name: Literal["momentum"] = "momentum"
    learning_rate: LearningRate = 0.01
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    schedule: ScheduleSpec | None = None


class NesterovSpec(_Closed):
    name: Literal["nesterov"] = "nesterov"
    learning_rate: LearningRate = 0.01
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    schedule: ScheduleSpec | None = None


class AdaGradSpec(_Closed):
    name: Literal["adagrad"] = "adagrad"
    learning_rate: LearningRate = 0.01
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    schedule: ScheduleSpec | None = None


class RMSpropSpec(_Closed):
    name: Literal["rmsprop"] = "rmsprop"
    learning_rate: LearningRate = 0.001
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    schedule: ScheduleSpec | None = None


class AdamSpec(_Closed):
    name: Literal["adam"] = "adam"
    learning_rate: LearningRate = 0.001
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    eps: float = Field(1e-8, gt=0.0, le=1.0)
    schedule: ScheduleSpec | None = None


OptimizerSpec = Annotated[
    SGDSpec | MomentumSpec | NesterovSpec | AdaGradSpec | RMSpropSpec | AdamSpec,
    Field(discriminator="name"),
]
OPTIMIZER_NAMES: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


class EarlyStoppingSpec(_Closed):
    """Stop when validation loss has not improved by more than min_delta for `patience` epochs."""

    patience: int = Field(5, ge=1, le=100_000)
    min_delta: float = Field(0.0, ge=0.0)


# --- the whole training spec -------------------------------------------------------------------


class TrainingSpec(_Closed):
    """Everything needed to train, except the data. The service's job body extends this."""

    network: NetworkSpec
    loss: Literal["cross_entropy", "mse"] | None = Field(
        None, description="Default: cross_entropy for classification, mse for regression."
    )
    optimizer: OptimizerSpec = SGDSpec()
    batch_size: int = Field(32, ge=1, le=1_000_000)
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    l2: float = Field(0.0, ge=0.0, le=1e3, description="λ in ½λ‖W‖²_F; biases are not penalised.")
    early_stopping: EarlyStoppingSpec | None = None
    standardize: bool = Field(True, description="Store x′ = (x − mean) / scale with the model.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    dtype: Literal["float32", "float64"] = "float32"
    diagnostics_every: int = Field(1, ge=0, description="Epochs between diagnostics; 0 = off.")


# --- derived facts, known before any allocation -----------------------------------------------


def layer_shapes(network: NetworkSpec, n_inputs: int) -> list[dict[str, tuple[int, ...]]]:
    """Shapes of every parameter array per layer (lecture orientation: W is (M_l, M_{l-1}))."""
    shapes: list[dict[str, tuple[int, ...]]] = []
    fan_in = n_inputs
    for layer in network.layers:
        if isinstance(layer, MaxoutLayer):
            w_shape = (layer.units, layer.pieces, fan_in)
            shapes.append({"W": w_shape, "b": (layer.units, layer.pieces)})
        else:
            entry: dict[str, tuple[int, ...]] = {"W": (layer.units, fan_in), "b": (layer.units,)}
            act = layer.activation
            if act.name == "prelu":
                entry["gamma"] = (layer.units,)
            elif act.name == "swish" and act.learnable:
                entry["beta"] = (layer.units,)
            shapes.append(entry)
        fan_in = layer.units
    return shapes


def parameter_count(network: NetworkSpec, n_inputs: int) -> int:
    """P = Σ (M_{l-1} + 1)·M_l, plus maxout's K-fold pieces and learned activation parameters."""
    total = 0
    for entry in layer_shapes(network, n_inputs):
        for shape in entry.values():
            size = 1
            for dim in shape:
                size *= dim
            total += size
    return total


def buffer_values_per_row(network: NetworkSpec) -> int:
    """How many numbers a network's per-batch buffers hold for each row of a batch (engine.layers
    `allocate`): z, a, δ and a scratch array per dense unit; a, δ and the winning piece's index per
    maxout unit plus its K pieces' values and deltas. Known before any allocation, like P."""
    total = 0
    for layer in network.layers:
        if isinstance(layer, MaxoutLayer):
            total += 3 * layer.units + 2 * layer.units * layer.pieces
        else:
            total += 4 * layer.units + 1  # and one of the ones-vector for the bias gradient
    return total


def resolve_loss(spec: TrainingSpec, task: Literal["classification", "regression"]) -> str:
    """The loss to use: the explicit one, else cross_entropy for classes and mse for values."""
    if spec.loss is not None:
        return spec.loss
    return "cross_entropy" if task == "classification" else "mse"


def check_against_data(
    spec: TrainingSpec,
    *,
    n_features: int,
    task: Literal["classification", "regression"],
    n_classes: int = 0,
    n_targets: int = 1,
) -> None:
    """Raise SpecError when the spec cannot train on data of this shape and task."""
    if n_features < 1:
        raise SpecError("the data has no feature columns")
    out = spec.network.output
    act = out.activation.name
    loss = resolve_loss(spec, task)
    if task == "classification":
        if n_classes < 2:
            raise SpecError(f"classification needs at least 2 classes; the data has {n_classes}")
        if loss != "cross_entropy":
            raise SpecError("classification data needs loss 'cross_entropy'")
        if act == "softmax":
            if out.units != n_classes:
                raise SpecError(
                    f"the softmax output layer has {out.units} units but the data has "
                    f"{n_classes} classes; set units to {n_classes}"
                )
        elif act == "logistic":
            if out.units != 1 or n_classes != 2:
                raise SpecError(
                    "a logistic output needs 1 unit and 2 classes; "
                    f"got {out.units} units and {n_classes} classes (use softmax for more)"
                )
        else:
            raise SpecError(
                f"cross_entropy needs a softmax or logistic output layer, not {act!r}"
            )
    else:
        if loss != "mse":
            raise SpecError("regression data needs loss 'mse'")
        if act == "softmax":
            raise SpecError("softmax output is for classification; use identity for regression")
        if out.units != n_targets:
            raise SpecError(
                f"the output layer has {out.units} units but the data has {n_targets} target "
                f"column(s); set units to {n_targets}"
            )
