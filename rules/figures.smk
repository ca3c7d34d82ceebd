# Figures: each file is its own target, drawn by `structae figure NAME` from the registry in
# structae.figures, whose entries also give the rules their wildcard choices and report captions.


localrules:
    figure_data,
    figure_curves,
    figure_model,
    figure_metrics,
    figure_recombination,
    figure_umap,
    figure_reconstructions,


rule figure_data:
    """A grid of a dataset's samples and their object masks."""
    input:
        processed_first,
    output:
        report("results/figures/data/{dataset}.png", category="data", caption="../report/data.rst"),
    log:
        "logs/figure_data/{dataset}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae data inspect --data {input:q} --out {output:q} > {log:q} 2>&1"


rule figure_curves:
    """Training curves of a paper's experiments, every seed (and validation curves, when they score val)."""
    input:
        train_logs_of,
    output:
        report(
            "results/figures/{paper}/{figure}.png",
            category="{paper}",
            subcategory="training",
            caption="../report/figure.rst",
        ),
    log:
        "logs/figure_curves/{paper}/{figure}.log",
    wildcard_constraints:
        paper=TABLE,
        figure="training_curves|validation_curves",
    conda:
        "../envs/structae.yaml"
    params:
        caption=figure_caption,
        title=curves_title,
    shell:
        "exec structae figure {wildcards.figure:q} --logs {input:q} --out {output:q} --title {params.title:q} "
        "> {log:q} 2>&1"


rule figure_curves_of_experiment:
    """One experiment's training or validation curves, every seed: what a longer run's config asks for
    (config/cae_long.yaml, config/iodine_long.yaml), without training the paper's other experiments."""
    input:
        experiment_train_logs,
    output:
        "results/figures/{paper}/{figure}_{experiment}.png",
    log:
        "logs/figure_curves/{paper}/{figure}_{experiment}.log",
    wildcard_constraints:
        paper=TABLE,
        figure="training_curves|validation_curves",
        experiment=EXPERIMENT,
    conda:
        "../envs/structae.yaml"
    params:
        title=experiment_curves_title,
    shell:
        "exec structae figure {wildcards.figure:q} --logs {input:q} --out {output:q} --title {params.title:q} "
        "> {log:q} 2>&1"


rule figure_model:
    """A per-model figure of one experiment: its first seed's checkpoint on its test images."""
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/figures/{paper}/{figure}_{experiment}.{ext}",
            category="{paper}",
            subcategory="{figure}",
            caption="../report/figure.rst",
        ),
    log:
        "logs/figure_model/{paper}/{figure}_{experiment}.{ext}.log",
    benchmark:
        "benchmarks/figure_model/{paper}/{figure}_{experiment}.{ext}.tsv"
    wildcard_constraints:
        paper=TABLE,
        figure=MODEL_FIGURE,
        experiment=EXPERIMENT,
        ext="png|gif",
    conda:
        "../envs/structae.yaml"
    params:
        split=split_option,
        caption=figure_caption,
    shell:
        "exec structae figure {wildcards.figure:q} --checkpoint {input.model:q} --data {input.data:q} "
        "{params.split:q} --out {output:q} --title {wildcards.experiment:q} > {log:q} 2>&1"


rule figure_metrics:
    """A paper figure drawn from the metrics of all its experiments (IODINE's iterations, SWWAE's errors)."""
    input:
        metrics_of,
    output:
        report(
            "results/figures/{paper}/{figure}.png",
            category="{paper}",
            subcategory="{figure}",
            caption="../report/figure.rst",
        ),
    log:
        "logs/figure_metrics/{paper}/{figure}.log",
    wildcard_constraints:
        paper=TABLE,
        figure=METRICS_FIGURE,
    conda:
        "../envs/structae.yaml"
    params:
        caption=figure_caption,
    shell:
        "exec structae figure {wildcards.figure:q} --metrics {input:q} --out {output:q} > {log:q} 2>&1"


rule embed_latents:
    """UMAP embedding of a MAGANet or VAE model's latents of training images."""
    input:
        unpack(embedding_inputs),
    output:
        "results/embeddings/{experiment}.npz",
    log:
        "logs/embed_latents/{experiment}.log",
    benchmark:
        "benchmarks/embed_latents/{experiment}.tsv"
    wildcard_constraints:
        experiment=EXPERIMENT,
    conda:
        "../envs/structae.yaml"
    params:
        split=split_option,
    shell:
        "exec structae embed --checkpoint {input.model:q} --data {input.data:q} {params.split:q} --out {output:q} "
        "> {log:q} 2>&1"


rule figure_umap:
    """MAGANet's and the VAE's UMAP embeddings side by side, coloured by one dSprites factor."""
    input:
        umap_embeddings,
    output:
        report(
            "results/figures/maganet/umap_{factor}.png",
            category="maganet",
            subcategory="umap",
            caption="../report/figure.rst",
        ),
    log:
        "logs/figure_umap/{factor}.log",
    wildcard_constraints:
        factor=UMAP_FACTOR,
    conda:
        "../envs/structae.yaml"
    params:
        figure=umap_figure,
        caption=umap_caption,
        labels=umap_experiments,
    shell:
        "exec structae figure {params.figure:q} --embeddings {input:q} --labels {params.labels:q} --out {output:q} "
        "> {log:q} 2>&1"


rule figure_recombination:
    """Every MAGANet-paper model's reconstruction of held-out factor combinations, beside pivot and target."""
    input:
        unpack(recombination_inputs),
    output:
        report(
            "results/figures/maganet/recombination.png",
            category="maganet",
            subcategory="recombination",
            caption="../report/figure.rst",
        ),
    log:
        "logs/figure_recombination.log",
    benchmark:
        "benchmarks/figure_recombination.tsv"
    conda:
        "../envs/structae.yaml"
    params:
        caption=caption_of("recombination"),
        labels=maganet_experiments,
        split=split_option,
    shell:
        "exec structae figure recombination --checkpoints {input.models:q} --labels {params.labels:q} "
        "--data {input.data:q} {params.split:q} --out {output:q} > {log:q} 2>&1"


rule figure_reconstructions:
    """SWWAE reconstructions with hard and with soft what-where pooling."""
    input:
        unpack(reconstruction_inputs),
    output:
        report(
            "results/figures/swwae/reconstructions.png",
            category="swwae",
            subcategory="reconstructions",
            caption="../report/figure.rst",
        ),
    log:
        "logs/figure_reconstructions.log",
    benchmark:
        "benchmarks/figure_reconstructions.tsv"
    conda:
        "../envs/structae.yaml"
    params:
        caption=caption_of("reconstructions"),
        labels=swwae_reconstruction_experiments,
    shell:
        "exec structae figure reconstructions --checkpoints {input.models:q} --labels {params.labels:q} "
        "--data {input.data:q} --out {output:q} > {log:q} 2>&1"
