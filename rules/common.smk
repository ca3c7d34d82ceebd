# Validation of the config and the helpers (input functions, target lists) the rules use.
import json
import os
import re
import sys

from structae import claims, figures, kernels, models, names, paths
from structae.config import validate_config
from structae.experiment_keys import NOT_TRAINING
from structae.data.datasets import SCENE_GENERATORS, raw_path, sources_of
from structae.data.sources import SOURCES
from structae.errors import UserError
from structae.figures.maganet import FACTORS
from structae.models import swwae
from structae.options import from_mapping

try:
    validate_config(config, source=" + ".join(map(str, workflow.configfiles)) or "config")
except UserError as err:
    sys.exit(f"structae: error: {err}")

# Every job's `structae` pins its kernels by this variable (structae.kernels): local jobs inherit Snakemake's
# environment, and a cluster job's Snakemake reads the same config again. Like threads it is not a job
# parameter: switching it reruns nothing (`--forcerun train` retrains under the new setting).
os.environ[kernels.ENV_VAR] = config["kernels"]

PAPERS = ["cae", "iodine", "maganet", "swwae"]  # "engine" experiments (the tiny model) reach only `all`
FIGURES = figures.registry()  # every figure, with its scope and report caption (structae.figures)
DATASETS = config["datasets"]
SPLITS = config["splits"]
EXPERIMENTS = config["experiments"]


def _choice(choices):
    """A wildcard constraint matching exactly `choices` (and nothing when there are none)."""
    return "|".join(sorted(map(re.escape, choices))) or "(?!)"


SAFE_NAME = names.PATTERN  # every wildcard's constraint unless a rule narrows it (Snakefile)


GENERATED = _choice(d for d, spec in DATASETS.items() if not sources_of(spec))
CONVERTED = _choice(d for d, spec in DATASETS.items() if sources_of(spec))
# Scene generators, whose test split a fresh seed redraws; MNIST&Shape at paper scale also reads the idx files.
SCENE_GENERATED = _choice(d for d, spec in DATASETS.items() if spec["kind"] in SCENE_GENERATORS)
EXPERIMENT = _choice(EXPERIMENTS)
FRESH_TESTED = {name for name, exp in EXPERIMENTS.items() if exp["evaluate"]["fresh_test_seed"] is not None}
FRESH_EXPERIMENT = _choice(FRESH_TESTED)  # experiments also scored on a fresh test split
MODEL_FIGURE = _choice(figures.model_figure_names())
UMAP_FACTOR = _choice(FACTORS)
METRICS_FIGURE = _choice(name for name, figure in FIGURES.items() if figure.paper and "metrics" in figure.options())
TABLE = _choice({exp["paper"] for exp in EXPERIMENTS.values()})
CLAIMS = {exp["paper"] for exp in EXPERIMENTS.values()} & set(claims.CLAIMS)  # papers with a claims page
CLAIMS_PAPER = _choice(CLAIMS)
SOURCE = _choice(SOURCES)
SOURCE_FILE = _choice({source.file for source in SOURCES.values()})


def _entry_json(entry):
    # Passed as `params:` so that changing an entry reruns exactly the jobs that use it.
    return json.dumps(entry)  # key order kept: split sizes are consecutive in their order


def dataset_spec(wildcards):
    # `papers` only groups targets; changing it must not remake the data.
    spec = {k: v for k, v in DATASETS[wildcards.dataset].items() if k != "papers"}
    return _entry_json(spec)


def split_spec(wildcards):
    return _entry_json(SPLITS[wildcards.split])


def train_spec(wildcards):
    # Seeds, evaluation settings, cluster resources and reported numbers do not change a trained model.
    entry = EXPERIMENTS[wildcards.experiment]
    return _entry_json({k: v for k, v in entry.items() if k not in NOT_TRAINING})


def train_resource(name):
    """A function of the wildcards giving one of the experiment's `resources` (what the train job requests)."""

    def get(wildcards):
        return EXPERIMENTS[wildcards.experiment]["resources"][name]

    return get


def _max_job_minutes():
    value = os.environ.get("STRUCTAE_SLURM_MAX_RUNTIME", "1440")
    if not value.isdigit() or int(value) < 10:
        sys.exit(
            f"structae: error: STRUCTAE_SLURM_MAX_RUNTIME={value!r}: give the cluster's time limit in minutes (>= 10)"
        )
    return int(value)


MAX_JOB_MINUTES = _max_job_minutes()  # a partition's time limit; longer training runs go in chunks


def train_runtime(wildcards):
    """Minutes one training job asks for: the experiment's runtime, capped at the cluster's limit. A longer
    run is chunked: at the limit the job saves, requeues itself and resumes (structae.requeue)."""
    return min(EXPERIMENTS[wildcards.experiment]["resources"]["runtime"], MAX_JOB_MINUTES)


def evaluate_gpus(wildcards):
    """An experiment that trains on GPUs is evaluated on one: its model on the whole test set."""
    return min(EXPERIMENTS[wildcards.experiment]["resources"]["gpus"], 1)


def train_launcher(wildcards, resources):
    """`structae`, or torchrun with one process per GPU the job was given (DDP on one node); a list of words
    that the shell line quotes one by one."""
    if resources.gpu > 1:
        return ["torchrun", "--standalone", "--nproc_per_node", str(resources.gpu), "-m", "structae.cli"]
    return ["structae"]


def experiment_spec(wildcards):
    entry = EXPERIMENTS[wildcards.experiment]
    return _entry_json({k: v for k, v in entry.items() if k != "resources"})


def experiment_inputs(wildcards):
    """The experiment's processed split and, for a recombination split, its index file; the val split when it
    is scored during training."""
    data = paths.experiment_data(config, wildcards.experiment)
    return {"data": data.train, "split": [data.split] if data.split else [], "val": [data.val] if data.val else []}


def evaluate_inputs(wildcards):
    data = paths.experiment_data(config, wildcards.experiment)
    other = EXPERIMENTS[wildcards.experiment]["evaluate"]["compare_with"]
    return {
        "data": data.test,
        "split": [data.test_split] if data.test_split else [],
        "checkpoints": checkpoints_of(wildcards.experiment),
        "reference": checkpoints_of(other) if other else [],
    }


def reference_option(wildcards, input):
    """Options as lists of words, so that the shell line quotes each (an empty list adds nothing)."""
    return ["--reference-checkpoints", *input.reference] if input.reference else []


def split_option(wildcards, input):
    return ["--split-index", *input.split] if input.split else []


def val_option(wildcards, input):
    return ["--val-data", *input.val] if input.val else []


def curves_title(wildcards):
    return f"{wildcards.figure.replace('_', ' ')}: {wildcards.paper}"


def experiment_curves_title(wildcards):
    return f"{wildcards.figure.replace('_', ' ')}: {wildcards.experiment}"


def fresh_test_seed(wildcards):
    return EXPERIMENTS[wildcards.experiment]["evaluate"]["fresh_test_seed"]


def maganet_experiments(wildcards=None):
    return experiments_of("maganet")


def checkpoints_of(experiment):
    return [paths.checkpoint(experiment, seed) for seed in EXPERIMENTS[experiment]["seeds"]]


def experiments_of(paper):
    return [name for name, exp in EXPERIMENTS.items() if exp["paper"] == paper]


def metrics_of(wildcards):
    return [paths.metrics(name) for name in experiments_of(wildcards.paper)]


def fresh_evaluate_inputs(wildcards):
    """evaluate's inputs, with the dataset's test split drawn with evaluate.fresh_test_seed as the data."""
    entry = EXPERIMENTS[wildcards.experiment]
    fresh = paths.fresh_test(entry["dataset"], entry["evaluate"]["fresh_test_seed"])
    return {**evaluate_inputs(wildcards), "data": fresh, "split": []}


def table_metrics_of(wildcards):
    """A paper's metrics files: every experiment's, and its fresh test split's where it has one."""
    fresh = [paths.fresh_metrics(name) for name in experiments_of(wildcards.paper) if name in FRESH_TESTED]
    return metrics_of(wildcards) + fresh


def train_logs_of(wildcards):
    return [
        paths.train_log(name, seed) for name in experiments_of(wildcards.paper) for seed in EXPERIMENTS[name]["seeds"]
    ]


def experiment_train_logs(wildcards):
    """One experiment's training logs, every seed; the figure's path must name the experiment's paper."""
    paper = EXPERIMENTS[wildcards.experiment]["paper"]
    if paper != wildcards.paper:
        raise UserError(
            f"experiment {wildcards.experiment} belongs to paper {paper}: ask for "
            f"results/figures/{paper}/{wildcards.figure}_{wildcards.experiment}.png"
        )
    return [paths.train_log(wildcards.experiment, seed) for seed in EXPERIMENTS[wildcards.experiment]["seeds"]]


def model_figures(paper):
    """The paper's figures (structae.figures.registry()): each per-model figure for every experiment of its
    model, {figure}_{experiment}.{ext}, and the figures made once from all its experiments."""
    per_model = [
        f"results/figures/{paper}/{FIGURES[figure].file(figure).format(experiment=name)}"
        for name in experiments_of(paper)
        for figure in figures.of_model(EXPERIMENTS[name]["model"])
    ]
    validated = any(EXPERIMENTS[name]["train"]["validate_every"] for name in experiments_of(paper))
    return per_model + [paths.figure(paper, name) for name in figures.of_paper(paper, validated)]


def result_targets(paper):
    """A paper's table (CSV, markdown and HTML), training curves, model figures and claims page, when it has
    experiments."""
    if not experiments_of(paper):
        return []
    table = paths.table(paper)
    claims_page = [f"results/report/{paper}_claims.html"] if paper in CLAIMS else []
    return [table, table.replace(".csv", ".md"), table.replace(".csv", ".html"), *model_figures(paper), *claims_page]


def claim_figures(wildcards):
    """The figures a paper's claims show that this run makes."""
    wanted = set(claims.figures_of(wildcards.paper))
    return [path for path in model_figures(wildcards.paper) if path.rsplit("/", 1)[1] in wanted]


def figure_inputs(wildcards):
    """The first seed's checkpoint and the test images of the experiment a figure shows."""
    data = paths.experiment_data(config, wildcards.experiment)
    return {
        "model": checkpoints_of(wildcards.experiment)[0],
        "data": data.test,
        "split": [data.test_split] if data.test_split else [],
    }


def raw_inputs(wildcards):
    return [raw_path(source) for source in sources_of(DATASETS[wildcards.dataset])]


def processed(dataset, split=None):
    """A dataset's processed split; by default its first one."""
    return paths.processed(dataset, split or next(iter(DATASETS[dataset]["sizes"])))


def split_source(wildcards):
    return processed(SPLITS[wildcards.split]["dataset"])


def datasets_of(paper):
    """Datasets a paper's target shows: those its experiments train on, and those that name the paper."""
    used = {exp["dataset"] for exp in EXPERIMENTS.values() if exp["paper"] == paper}
    used |= {name for name, spec in DATASETS.items() if paper in spec["papers"]}
    return sorted(used)


def data_figures(datasets):
    return [f"results/figures/data/{d}.png" for d in datasets]


def datasets_in_use():
    used = {d for paper in PAPERS for d in datasets_of(paper)} | {s["dataset"] for s in SPLITS.values()}
    return sorted(used)


def processed_files(datasets):
    return [processed(d, split) for d in datasets for split in DATASETS[d]["sizes"]]


def split_files(datasets):
    """Index files of the recombination splits defined on `datasets`."""
    return [paths.split_index(s["dataset"], name) for name, s in SPLITS.items() if s["dataset"] in datasets]


def paper_targets(paper):
    datasets = datasets_of(paper)
    return processed_files(datasets) + data_figures(datasets) + split_files(datasets) + result_targets(paper)


def all_targets():
    datasets = datasets_in_use()  # includes every split's dataset, so every split file is listed
    targets = processed_files(datasets) + data_figures(datasets) + split_files(datasets)
    for paper in PAPERS:
        targets += paper_targets(paper)
    targets += result_targets("engine")
    targets.append("results/report/claims.md")
    return list(dict.fromkeys(targets))


def claims_tables(wildcards=None):
    """The tables of the papers this run trains that have claims: the README's claims table reads them."""
    return [f"results/tables/{paper}.csv" for paper in sorted(CLAIMS)]


def processed_first(wildcards):
    return processed(wildcards.dataset)


def scored_on_own_split(name):
    settings = EXPERIMENTS[name]["evaluate"]
    return settings["split"] in (None, EXPERIMENTS[name].get("split"))


def umap_experiments(wildcards=None):
    """MAGANet-paper experiments whose latents the UMAP figures show side by side: those scored on their
    own split (the to_element runs of MAGANet and the VAE)."""
    return [name for name in experiments_of("maganet") if scored_on_own_split(name)]


def embedding_inputs(wildcards):
    """An experiment's first checkpoint and its training rows (the UMAP embeds training images)."""
    data = paths.experiment_data(config, wildcards.experiment)
    return {
        "model": checkpoints_of(wildcards.experiment)[0],
        "data": data.train,
        "split": [data.split] if data.split else [],
    }


def recombination_inputs(wildcards):
    """Every MAGANet-paper experiment's first checkpoint, and the test rows they are all scored on."""
    shown = experiments_of("maganet")
    data = paths.experiment_data(config, shown[0])
    return {
        "models": [checkpoints_of(name)[0] for name in shown],
        "data": data.test,
        "split": [data.test_split] if data.test_split else [],
    }


def swwae_reconstruction_experiments(wildcards=None):
    """The first SWWAE experiment that reconstructs (λ_rec > 0) with hard pooling, and its soft twin."""
    chosen = []
    for pooling in swwae.POOLINGS:
        for name in experiments_of("swwae"):
            settings = model_settings(name)
            if settings.pooling == pooling and settings.lambda_rec > 0:
                chosen.append(name)
                break
    return chosen


def model_settings(name):
    """Experiment `name`'s model config with the model's defaults (its @dataclass: one source for both)."""
    entry = EXPERIMENTS[name]
    return from_mapping(models.get(entry["model"]).Config, entry["model_config"], f"experiments.{name}.model_config")


def figure_caption(wildcards):
    """The report caption of the figure named by a job's {figure} wildcard (report/figure.rst shows it)."""
    return FIGURES[wildcards.figure].caption


def caption_of(name):
    """A params function giving figure `name`'s report caption, for the rules that draw one fixed figure (a
    function: Snakemake would read the caption's Jinja braces in a plain string as wildcards)."""

    def caption(wildcards):
        return FIGURES[name].caption

    return caption


def umap_figure(wildcards):
    return f"umap_{wildcards.factor}"


def umap_caption(wildcards):
    return FIGURES[umap_figure(wildcards)].caption


def umap_embeddings(wildcards):
    return [f"results/embeddings/{name}.npz" for name in umap_experiments()]


def reconstruction_inputs(wildcards):
    """The first checkpoints of the SWWAE experiments the reconstruction figure compares, and their test images."""
    shown = swwae_reconstruction_experiments()
    return {"models": [checkpoints_of(name)[0] for name in shown], "data": paths.experiment_data(config, shown[0]).test}
