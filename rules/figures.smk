# Figures and tables: each file is its own target; figures go into the report, grouped by paper.


localrules:
    figure_data,
    figure_curves,
    figure_model,
    figure_iterations,
    figure_recombination,
    figure_umap,
    figure_reconstructions,
    figure_error_vs_labels,


rule figure_data:
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
    input:
        train_logs_of,
    output:
        report("results/figures/{paper}/training_curves.png", category="{paper}", subcategory="training",
               caption="../report/curves.rst"),
    wildcard_constraints:
        paper=TABLE,
    params:
        title=curves_title,
    log:
        "logs/figure_curves/{paper}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure curves --logs {input:q} --out {output:q} --title {params.title:q} > {log:q} 2>&1"


rule figure_model:
    input:
        unpack(figure_inputs),
    output:
        report("results/figures/{paper}/{figure}_{experiment}.{ext}", category="{paper}", subcategory="{figure}",
               caption="../report/model_figure.rst"),
    wildcard_constraints:
        paper=TABLE,
        figure=MODEL_FIGURE,
        experiment=EXPERIMENT,
        ext="png|gif",
    params:
        split=split_option,
        model=experiment_model,
    log:
        "logs/figure_model/{paper}/{figure}_{experiment}.{ext}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure model --model {params.model:q} --figure {wildcards.figure:q} --checkpoint {input.model:q} "
        "--data {input.data:q} {params.split:q} --out {output:q} --title {wildcards.experiment:q} > {log:q} 2>&1"


rule figure_iterations:
    input:
        metrics_of,
    output:
        report("results/figures/{paper}/iterations.png", category="{paper}", subcategory="iterations",
               caption="../report/iterations.rst"),
    wildcard_constraints:
        paper="iodine",
    log:
        "logs/figure_iterations/{paper}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure iterations --metrics {input:q} --out {output:q} > {log:q} 2>&1"


rule embed_latents:
    input:
        unpack(embedding_inputs),
    output:
        "results/embeddings/{experiment}.npz",
    wildcard_constraints:
        experiment=EXPERIMENT,
    params:
        split=split_option,
    log:
        "logs/embed_latents/{experiment}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae embed --checkpoint {input.model:q} --data {input.data:q} {params.split:q} --out {output:q} "
        "> {log:q} 2>&1"


rule figure_umap:
    input:
        lambda wildcards: [f"results/embeddings/{name}.npz" for name in umap_experiments()],
    output:
        report("results/figures/maganet/umap_{factor}.png", category="maganet", subcategory="umap",
               caption="../report/umap.rst"),
    wildcard_constraints:
        factor="shape|posX|posY|scale|orientation",
    params:
        labels=umap_experiments,
    log:
        "logs/figure_umap/{factor}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure umap --embeddings {input:q} --labels {params.labels:q} --factor {wildcards.factor:q} "
        "--out {output:q} > {log:q} 2>&1"


rule figure_recombination:
    input:
        unpack(recombination_inputs),
    output:
        report("results/figures/maganet/recombination.png", category="maganet", subcategory="recombination",
               caption="../report/recombination.rst"),
    params:
        labels=maganet_experiments,
        split=split_option,
    log:
        "logs/figure_recombination.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure recombination --checkpoints {input.models:q} --labels {params.labels:q} "
        "--data {input.data:q} {params.split:q} --out {output:q} > {log:q} 2>&1"


rule figure_reconstructions:
    input:
        models=lambda wildcards: [checkpoints_of(name)[0] for name in swwae_reconstruction_experiments()],
        data=lambda wildcards: paths.experiment_data(config, swwae_reconstruction_experiments()[0]).test,
    output:
        report("results/figures/swwae/reconstructions.png", category="swwae", subcategory="reconstructions",
               caption="../report/reconstructions.rst"),
    params:
        labels=swwae_reconstruction_experiments,
    log:
        "logs/figure_reconstructions.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure reconstructions --checkpoints {input.models:q} --labels {params.labels:q} "
        "--data {input.data:q} --out {output:q} > {log:q} 2>&1"


rule figure_error_vs_labels:
    input:
        lambda wildcards: [paths.metrics(name) for name in experiments_of("swwae")],
    output:
        report("results/figures/swwae/error_vs_labels.png", category="swwae", subcategory="error",
               caption="../report/error_vs_labels.rst"),
    log:
        "logs/figure_error_vs_labels.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "exec structae figure errors --metrics {input:q} --out {output:q} > {log:q} 2>&1"
