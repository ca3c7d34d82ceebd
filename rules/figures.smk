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
        "structae data inspect --data {input} --out {output} > {log} 2>&1"


rule figure_curves:
    input:
        train_logs_of,
    output:
        report("results/figures/{paper}/training_curves.png", category="{paper}", subcategory="training",
               caption="../report/curves.rst"),
    wildcard_constraints:
        paper=TABLE,
    log:
        "logs/figure_curves/{paper}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure curves --logs {input} --out {output} --title 'training curves: {wildcards.paper}' "
        "> {log} 2>&1"


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
        "structae figure model --model {params.model} --figure {wildcards.figure} --checkpoint {input.model} --data {input.data} "
        "{params.split} --out {output} --title {wildcards.experiment} > {log} 2>&1"


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
        "structae figure iterations --metrics {input} --out {output} > {log} 2>&1"


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
        "structae embed --checkpoint {input.model} --data {input.data} {params.split} --out {output} > {log} 2>&1"


rule figure_umap:
    input:
        lambda wildcards: [f"results/embeddings/{name}.npz" for name in umap_experiments()],
    output:
        report("results/figures/maganet/umap_{factor}.png", category="maganet", subcategory="umap",
               caption="../report/umap.rst"),
    wildcard_constraints:
        factor="shape|posX|posY|scale|orientation",
    params:
        labels=lambda wildcards: " ".join(umap_experiments()),
    log:
        "logs/figure_umap/{factor}.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure umap --embeddings {input} --labels {params.labels} --factor {wildcards.factor} "
        "--out {output} > {log} 2>&1"


rule figure_recombination:
    input:
        unpack(recombination_inputs),
    output:
        report("results/figures/maganet/recombination.png", category="maganet", subcategory="recombination",
               caption="../report/recombination.rst"),
    params:
        labels=lambda wildcards: " ".join(experiments_of("maganet")),
        split=split_option,
    log:
        "logs/figure_recombination.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure recombination --checkpoints {input.models} --labels {params.labels} --data {input.data} "
        "{params.split} --out {output} > {log} 2>&1"


rule figure_reconstructions:
    input:
        models=lambda wildcards: [checkpoints_of(name)[0] for name in swwae_reconstruction_experiments()],
        data=lambda wildcards: paths.experiment_data(config, swwae_reconstruction_experiments()[0]).test,
    output:
        report("results/figures/swwae/reconstructions.png", category="swwae", subcategory="reconstructions",
               caption="../report/reconstructions.rst"),
    params:
        labels=lambda wildcards: " ".join(swwae_reconstruction_experiments()),
    log:
        "logs/figure_reconstructions.log",
    conda:
        "../envs/structae.yaml"
    shell:
        "structae figure reconstructions --checkpoints {input.models} --labels {params.labels} --data {input.data} "
        "--out {output} > {log} 2>&1"


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
        "structae figure errors --metrics {input} --out {output} > {log} 2>&1"
