"""The original generators' state-dict layouts (key -> shape), written from the papers' architecture descriptions and
the released checkpoints' key names, not from lwgan's modules: the independent reference for the generator and converter tests."""


def iccv_original_layout(conv_dim=64, repeat_num=6, background_channels=4, source_channels=6, transfer_channels=6):
    """Key -> shape of impersonator's ImpersonatorGenerator (n_down 3; convs without bias, affine IN)."""
    layout = {}
    widths = [conv_dim, 2 * conv_dim, 4 * conv_dim, 8 * conv_dim]

    def conv(name, cin, cout, kernel):
        layout[f"{name}.weight"] = (cout, cin, kernel, kernel)

    def transposed(name, cin, cout, kernel):
        layout[f"{name}.weight"] = (cin, cout, kernel, kernel)

    def norm(name, channels):
        layout[f"{name}.weight"] = (channels,)
        layout[f"{name}.bias"] = (channels,)

    def residual(name, channels):
        conv(f"{name}.main.0", channels, channels, 3)
        norm(f"{name}.main.1", channels)
        conv(f"{name}.main.3", channels, channels, 3)
        norm(f"{name}.main.4", channels)

    # bg_model.model: 0 conv7 + 1 IN; 3/6/9 stride-2 convs; 12.. residual blocks; 3 transposed convs; conv7; tanh.
    conv("bg_model.model.0", background_channels, conv_dim, 7)
    norm("bg_model.model.1", conv_dim)
    for level in range(3):
        conv(f"bg_model.model.{3 + 3 * level}", widths[level], widths[level + 1], 3)
        norm(f"bg_model.model.{4 + 3 * level}", widths[level + 1])
    for block in range(repeat_num):
        residual(f"bg_model.model.{12 + block}", widths[3])
    for level in range(3):
        index = 12 + repeat_num + 3 * level
        transposed(f"bg_model.model.{index}", widths[3 - level], widths[2 - level], 3)
        norm(f"bg_model.model.{index + 1}", widths[2 - level])
    conv(f"bg_model.model.{12 + repeat_num + 9}", conv_dim, 3, 7)

    for stream, channels in (("src_model", source_channels), ("tsf_model", transfer_channels)):
        conv(f"{stream}.encoders.0.0", channels, conv_dim, 7)
        norm(f"{stream}.encoders.0.1", conv_dim)
        for level in range(1, 4):
            conv(f"{stream}.encoders.{level}.0", widths[level - 1], widths[level], 3)
            norm(f"{stream}.encoders.{level}.1", widths[level])
        for block in range(repeat_num):
            residual(f"{stream}.resnets.{block}", widths[3])
        for level in range(3):
            transposed(f"{stream}.decoders.{level}.0", widths[3 - level], widths[2 - level], 3)
            norm(f"{stream}.decoders.{level}.1", widths[2 - level])
            conv(f"{stream}.skippers.{level}.0", widths[3 - level], widths[2 - level], 3)  # on cat[skip, decoded]
            norm(f"{stream}.skippers.{level}.1", widths[2 - level])
        conv(f"{stream}.img_reg.0", conv_dim, 3, 7)
        conv(f"{stream}.attetion_reg.0", conv_dim, 1, 7)
    return layout


def attention_original_layout(filters=(64, 128, 256), res_blocks=6, background_filters=(64, 128, 128, 256),
                              background_res_blocks=6, spade_hidden=128, background_channels=4, source_channels=6,
                              transfer_channels=6):
    """Key -> shape of iPERCore's AttentionLWBGenerator (AttLWB-SPADE) with equal source and transfer widths."""
    layout = {}

    def conv(name, cin, cout, kernel, bias=True):
        layout[f"{name}.weight"] = (cout, cin, kernel, kernel)
        if bias:
            layout[f"{name}.bias"] = (cout,)

    def transposed(name, cin, cout, kernel, bias=True):
        layout[f"{name}.weight"] = (cin, cout, kernel, kernel)
        if bias:
            layout[f"{name}.bias"] = (cout,)

    # bg_net.main: conv7 (bias), IN without parameters, stride-2 convs (bias), residual blocks with IN
    # (convs main.0 and main.3, bias), transposed conv4 without bias, conv7 without bias, tanh.
    levels = len(background_filters)
    conv("bg_net.main.0", background_channels, background_filters[0], 7)
    for level in range(1, levels):
        conv(f"bg_net.main.{3 * level}", background_filters[level - 1], background_filters[level], 3)
    first_block = 3 * levels
    for block in range(background_res_blocks):
        conv(f"bg_net.main.{first_block + block}.main.0", background_filters[-1], background_filters[-1], 3)
        conv(f"bg_net.main.{first_block + block}.main.3", background_filters[-1], background_filters[-1], 3)
    index = first_block + background_res_blocks
    for level in range(levels - 1, 0, -1):
        transposed(f"bg_net.main.{index}", background_filters[level], background_filters[level - 1], 4, bias=False)
        index += 3
    conv(f"bg_net.main.{index}", background_filters[0], 3, 7, bias=False)

    # src_net (ResAutoEncoder): no norms, biased convs.
    widths = [source_channels, *filters]
    for level in range(len(filters)):
        conv(f"src_net.encoders.layers.{level}.0", widths[level], widths[level + 1], 3)
    for block in range(res_blocks):
        conv(f"src_net.res_blocks.{block}.main.0", filters[-1], filters[-1], 3)
        conv(f"src_net.res_blocks.{block}.main.2", filters[-1], filters[-1], 3)
    decoder = [filters[-1], *reversed(filters)]
    for level in range(len(filters)):
        transposed(f"src_net.decoders.layers.{level}.0", decoder[level], decoder[level + 1], 4)
    conv("src_net.img_reg.0", filters[0], 3, 5, bias=False)
    conv("src_net.att_reg.0", filters[0], 1, 5, bias=False)

    # transfer stream
    widths = [transfer_channels, *filters]
    for level in range(len(filters)):
        conv(f"tsf_net_enc.layers.{level}.0", widths[level], widths[level + 1], 3, bias=False)
    for block in range(res_blocks):
        conv(f"res_blocks.{block}.main.0", filters[-1], filters[-1], 3)
        conv(f"res_blocks.{block}.main.2", filters[-1], filters[-1], 3)
    for level in range(len(filters)):
        transposed(f"tsf_net_dec.upconvs.{level}.0", decoder[level], decoder[level + 1], 4)
    for level in range(len(filters) - 1):  # on cat[encoder map of the same size, upconv output]
        conv(f"tsf_net_dec.skippers.{level}.0", filters[-2 - level] + decoder[level + 1], decoder[level + 1], 3)
    conv("tsf_img_reg.0", filters[0], 3, 5, bias=False)
    conv("tsf_att_reg.0", filters[0], 1, 5, bias=False)

    def attention_block(name, channels):
        for projection in ("fq", "fk", "fv"):
            conv(f"{name}.{projection}", channels, channels, 1)
        conv(f"{name}.spade.mlp_shared.0", channels, spade_hidden, 3)
        conv(f"{name}.spade.mlp_gamma", spade_hidden, channels, 3)
        conv(f"{name}.spade.mlp_beta", spade_hidden, channels, 3)

    for level, channels in enumerate(filters):
        attention_block(f"enc_attlwbs.{level}", channels)
    for block in range(res_blocks):
        attention_block(f"res_attlwbs.{block}", filters[-1])
    return layout
